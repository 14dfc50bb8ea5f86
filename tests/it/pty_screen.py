# tests/it/pty_screen.py: runs a program on a real pseudo-terminal (python3's stdlib pty) and
# keeps what a terminal would show: a small emulator of the few sequences a line program uses
# (cursor home, clear screen, erase line, SGR ignored, CR, LF with scrolling, backspace; wide
# East Asian characters take two cells). Imported by tests/it/reward_label.sh; not a test itself.
import fcntl, os, pty, re, select, signal, struct, termios, time, unicodedata


class Screen:
    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols
        self.grid = [[" "] * cols for _ in range(rows)]
        self.y = self.x = 0
        self.pending = b""

    def _scroll(self):
        self.grid.pop(0)
        self.grid.append([" "] * self.cols)

    def _lf(self):
        if self.y == self.rows - 1:
            self._scroll()
        else:
            self.y += 1

    def _put(self, ch):
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else (0 if unicodedata.combining(ch) else 1)
        if w == 0:
            return
        if self.x + w > self.cols:  # autowrap, as xterm does
            self.x = 0
            self._lf()
        self.grid[self.y][self.x] = ch
        if w == 2:
            self.grid[self.y][self.x + 1] = ""
        self.x += w

    def feed(self, data):
        data = self.pending + data
        self.pending = b""
        i = 0
        while i < len(data):
            b = data[i]
            if b == 0x1B:
                m = re.match(rb"\x1b\[([0-9;?]*)([@-~])", data[i:])
                if not m:
                    if len(data) - i < 16:
                        self.pending = data[i:]
                        return
                    i += 1
                    continue
                args, final = m.group(1).decode(), m.group(2)
                if final == b"H":
                    p = [int(a) if a else 1 for a in args.split(";")] if args else [1, 1]
                    self.y, self.x = p[0] - 1, (p[1] - 1 if len(p) > 1 else 0)
                elif final == b"J" and args == "2":
                    self.grid = [[" "] * self.cols for _ in range(self.rows)]
                elif final == b"K":
                    for c in range(self.x, self.cols):
                        self.grid[self.y][c] = " "
                i += m.end()
                continue
            if b == 0x0D:
                self.x = 0
            elif b == 0x0A:
                self._lf()
            elif b == 0x08:
                self.x = max(0, self.x - 1)
            elif b < 0x20 or b == 0x7F:
                pass
            else:
                n = 1 if b < 0x80 else 2 if b >> 5 == 6 else 3 if b >> 4 == 14 else 4
                if i + n > len(data):
                    self.pending = data[i:]
                    return
                for ch in data[i:i + n].decode("utf-8", "replace"):
                    self._put(ch)
                i += n
                continue
            i += 1

    def resize(self, rows, cols):
        self.grid = [(r + [" "] * cols)[:cols] for r in self.grid[-rows:]]
        while len(self.grid) < rows:
            self.grid.append([" "] * cols)
        self.rows, self.cols = rows, cols
        self.y, self.x = min(self.y, rows - 1), min(self.x, cols - 1)

    def lines(self):
        return ["".join(r).rstrip() for r in self.grid]

    def text(self):
        return "\n".join(self.lines())

    def dump(self, title):
        bar = "+" + "-" * self.cols + "+"
        print(f"---- screen {self.rows}x{self.cols}: {title}")
        print(bar)
        for l in self.lines():
            print("|" + l + " " * (self.cols - sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in l)) + "|")
        print(bar, flush=True)


class Pty:
    """A program on a pty of rows x cols; raw holds every byte it wrote."""

    def __init__(self, argv, rows=24, cols=80, env=None):
        self.screen = Screen(rows, cols)
        self.raw = b""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execve(argv[0], argv, env or os.environ)
        self.set_size(rows, cols)

    def set_size(self, rows, cols):
        # the kernel sends SIGWINCH to the pty's foreground process group
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def resize(self, rows, cols):
        self.set_size(rows, cols)
        self.screen.resize(rows, cols)

    def pump(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            return False
        if not data:
            return False
        self.raw += data
        self.screen.feed(data)
        return True

    def expect(self, pattern, timeout=10, since=0):
        """Waits until the output after byte `since` (decoded, escapes kept) matches pattern."""
        end = time.time() + timeout
        while time.time() < end:
            if re.search(pattern, self.raw[since:].decode("utf-8", "replace")):
                return
            self.pump(0.05)
        self.screen.dump("timeout")
        raise SystemExit(f"FAIL: no {pattern!r} within {timeout}s; output tail: {self.raw[-600:]!r}")

    def send(self, s):
        mark = len(self.raw)
        os.write(self.fd, s.encode() if isinstance(s, str) else s)
        return mark

    def settle(self, quiet=0.3):
        while self.pump(quiet):
            pass

    def kill(self, sig=signal.SIGKILL):
        os.kill(self.pid, sig)
        _, status = os.waitpid(self.pid, 0)
        self.settle(0.1)
        return status

    def wait(self, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            self.pump(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.settle(0.1)
                return os.waitstatus_to_exitcode(status)
        raise SystemExit("FAIL: the program did not exit")
