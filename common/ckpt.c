/* common/ckpt.c: model directories (config.json + model.safetensors), atomic writes and the
 * training-state file. Sections, in order: byte helpers, the safetensors reader, config.json,
 * ckpt_load, the safetensors writer and ckpt_save, train_state.bin.
 * Everything read from a file is validated before use; everything is written through fs.h:
 * the files of one save as one set (all appear or none), each read through fs_resolve. */
#include "ckpt.h"
#include "fs.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ckpt.c reads and writes tensor data in host order: little-endian hosts only"
#endif

enum { PATH_CAP = 4096 };
/* The reference implementation refuses headers above 100 MB; a GPT-2 header is ~20 KB. */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

/* ---- byte helpers --------------------------------------------------------------------- */

static uint64_t get_le64(const uint8_t *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static void put_le64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void put_le32(uint8_t *b, uint32_t v) {
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}

/* Reads exactly len bytes at off (retrying short reads and EINTR). */
static int pread_full(int fd, void *buf, size_t len, uint64_t off, const char *path, err_t *err) {
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return err_setf(err, "%s: read failed: %s", path, strerror(errno));
        if (r == 0) return err_setf(err, "%s: unexpected end of file (truncated?)", path);
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int join_path(char *out, const char *dir, const char *name, err_t *err) {
    int n = snprintf(out, PATH_CAP, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_CAP) return err_setf(err, "%s/%s: path too long", dir, name);
    return 0;
}

/* Writes the directory part of path into dir ("." when none) and returns the name part, or
 * NULL when the path is too long. */
static const char *split_path(const char *path, char *dir) {
    const char *slash = strrchr(path, '/');
    if (strlen(path) >= PATH_CAP) return NULL;
    if (!slash) {
        strcpy(dir, ".");
        return path;
    }
    const size_t n = slash == path ? 1 : (size_t)(slash - path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return slash + 1;
}

/* The path to read dir/name from: fs_resolve sees a set of files a crash interrupted whole. */
static int read_path(char *out, const char *dir, const char *name, err_t *err) {
    char path[PATH_CAP];
    return join_path(path, dir, name, err) || fs_resolve(path, out, PATH_CAP, err) ? -1 : 0;
}

/* ---- safetensors reader --------------------------------------------------------------- */

static const struct {
    const char *name;
    int size;
} dtypes[] = {
    [CKPT_DT_BOOL] = {"BOOL", 1},       [CKPT_DT_U8] = {"U8", 1},
    [CKPT_DT_I8] = {"I8", 1},           [CKPT_DT_F8_E4M3] = {"F8_E4M3", 1},
    [CKPT_DT_F8_E5M2] = {"F8_E5M2", 1}, [CKPT_DT_I16] = {"I16", 2},
    [CKPT_DT_U16] = {"U16", 2},         [CKPT_DT_F16] = {"F16", 2},
    [CKPT_DT_BF16] = {"BF16", 2},       [CKPT_DT_I32] = {"I32", 4},
    [CKPT_DT_U32] = {"U32", 4},         [CKPT_DT_F32] = {"F32", 4},
    [CKPT_DT_I64] = {"I64", 8},         [CKPT_DT_U64] = {"U64", 8},
    [CKPT_DT_F64] = {"F64", 8},
};
enum { NUM_DTYPES = sizeof dtypes / sizeof dtypes[0] };

const char *ckpt_dtype_name(ckpt_dtype_t dtype) {
    return (unsigned)dtype < NUM_DTYPES ? dtypes[dtype].name : "?";
}

int ckpt_dtype_size(ckpt_dtype_t dtype) {
    return (unsigned)dtype < NUM_DTYPES ? dtypes[dtype].size : 0;
}

struct ckpt_st {
    char *path;          /* as given to ckpt_st_open, for messages */
    int fd;              /* open for reading until close */
    uint64_t data_start; /* 8 + header length: file offset of the data area */
    uint64_t header_len;
    char *header;              /* raw header bytes + NUL */
    json_t *root;              /* parsed header; tensor names point into it */
    json_t *meta;              /* root's "__metadata__" object (borrowed) or NULL */
    int64_t n;                 /* tensors (excluding __metadata__) */
    ckpt_st_tensor_t *tensors; /* n entries, header order */
};

void ckpt_st_close(ckpt_st_t **st) {
    if (!st || !*st) return;
    ckpt_st_t *s = *st;
    if (s->fd >= 0) close(s->fd);
    json_decref(s->root);
    free(s->tensors);
    free(s->header);
    free(s->path);
    free(s);
    *st = NULL;
}

static int parse_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Fills t from one header entry and checks it on its own (dtype, shape, byte count, range). */
static int parse_entry(ckpt_st_tensor_t *t, const char *name, const json_t *e, uint64_t data_len,
                       const char *path, err_t *err) {
    t->name = name;
    if (!json_is_object(e))
        return err_setf(err, "%s: %s: header entry is not an object", path, name);
    const json_t *dt = json_object_get(e, "dtype"), *shape = json_object_get(e, "shape"),
                 *offs = json_object_get(e, "data_offsets");
    if (!json_is_string(dt)) return err_setf(err, "%s: %s: missing \"dtype\"", path, name);
    int d = -1;
    for (int i = 0; i < NUM_DTYPES; i++)
        if (!strcmp(json_string_value(dt), dtypes[i].name)) d = i;
    if (d < 0)
        return err_setf(err, "%s: %s: unknown dtype \"%s\"", path, name, json_string_value(dt));
    t->dtype = (ckpt_dtype_t)d;
    if (!json_is_array(shape) || json_array_size(shape) > CKPT_MAX_DIMS)
        return err_setf(err, "%s: %s: \"shape\" is not an array of at most %d sizes", path, name,
                        CKPT_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t dim;
        if (parse_u64(json_array_get(shape, (size_t)i), &dim) ||
            __builtin_mul_overflow(numel, dim, &numel) || numel > (uint64_t)INT64_MAX / 8)
            return err_setf(err, "%s: %s: bad \"shape\"", path, name);
        t->shape[i] = (int64_t)dim;
    }
    t->numel = (int64_t)numel;
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        parse_u64(json_array_get(offs, 0), &t->begin) ||
        parse_u64(json_array_get(offs, 1), &t->end) || t->end < t->begin)
        return err_setf(err, "%s: %s: bad \"data_offsets\"", path, name);
    if (t->end > data_len)
        return err_setf(err,
                        "%s: %s: data_offsets [%llu, %llu] beyond the %llu bytes of data: "
                        "truncated file",
                        path, name, (unsigned long long)t->begin, (unsigned long long)t->end,
                        (unsigned long long)data_len);
    const uint64_t need = numel * (uint64_t)dtypes[d].size;
    if (t->end - t->begin != need)
        return err_setf(err, "%s: %s: shape and dtype %s need %llu bytes, data_offsets hold %llu",
                        path, name, dtypes[d].name, (unsigned long long)need,
                        (unsigned long long)(t->end - t->begin));
    return 0;
}

static int cmp_begin(const void *a, const void *b) {
    const ckpt_st_tensor_t *x = *(ckpt_st_tensor_t *const *)a, *y = *(ckpt_st_tensor_t *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* The byte ranges must tile the data area exactly: no overlap, no hole, nothing after. */
static int check_tiling(ckpt_st_t *s, uint64_t data_len, err_t *err) {
    int rc = -1;
    const ckpt_st_tensor_t **order = malloc((size_t)(s->n ? s->n : 1) * sizeof *order);
    if (!order) return err_setf(err, "%s: out of memory", s->path);
    for (int64_t i = 0; i < s->n; i++) order[i] = &s->tensors[i];
    qsort(order, (size_t)s->n, sizeof *order, cmp_begin);
    uint64_t pos = 0;
    for (int64_t i = 0; i < s->n; i++) {
        if (order[i]->begin < pos) {
            err_setf(err, "%s: %s and %s overlap in the data area", s->path, order[i - 1]->name,
                     order[i]->name);
            goto done;
        }
        if (order[i]->begin > pos) {
            err_setf(err, "%s: bytes [%llu, %llu) of the data area belong to no tensor", s->path,
                     (unsigned long long)pos, (unsigned long long)order[i]->begin);
            goto done;
        }
        pos = order[i]->end;
    }
    if (pos != data_len) {
        err_setf(err, "%s: %llu bytes after the last tensor", s->path,
                 (unsigned long long)(data_len - pos));
        goto done;
    }
    rc = 0;
done:
    free(order);
    return rc;
}

/* Parses s->header into s->root, s->meta and s->tensors. */
static int parse_header(ckpt_st_t *s, uint64_t data_len, err_t *err) {
    json_error_t je;
    s->root = json_loadb(s->header, (size_t)s->header_len, JSON_REJECT_DUPLICATES, &je);
    if (!s->root)
        return err_setf(err, "%s: header is not valid JSON: %s (byte %d)", s->path, je.text,
                        je.position);
    if (!json_is_object(s->root)) return err_setf(err, "%s: header is not a JSON object", s->path);
    s->tensors = calloc(json_object_size(s->root) + 1, sizeof *s->tensors);
    if (!s->tensors) return err_setf(err, "%s: out of memory", s->path);
    const char *key;
    json_t *val;
    json_object_foreach(s->root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            const char *k2;
            json_t *v2;
            if (!json_is_object(val))
                return err_setf(err, "%s: __metadata__ is not an object", s->path);
            json_object_foreach(val, k2, v2) {
                if (!json_is_string(v2))
                    return err_setf(err, "%s: __metadata__: %s is not a string", s->path, k2);
            }
            s->meta = val;
            continue;
        }
        if (parse_entry(&s->tensors[s->n], key, val, data_len, s->path, err)) return -1;
        s->n++;
    }
    return check_tiling(s, data_len, err);
}

ckpt_st_t *ckpt_st_open(const char *path, err_t *err) {
    ckpt_st_t *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        err_setf(err, "%s: out of memory", path);
        free(s);
        return NULL;
    }
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        err_setf(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(s->fd, &sb)) {
        err_setf(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    const uint64_t size = (uint64_t)sb.st_size;
    uint8_t len8[8];
    if (size < 8) {
        err_setf(err, "%s: %llu bytes, too short for a safetensors header: truncated file", path,
                 (unsigned long long)size);
        goto fail;
    }
    if (pread_full(s->fd, len8, 8, 0, path, err)) goto fail;
    s->header_len = get_le64(len8);
    if (s->header_len > size - 8) {
        err_setf(err,
                 "%s: header length %llu beyond the file size %llu (truncated or not a "
                 "safetensors file)",
                 path, (unsigned long long)s->header_len, (unsigned long long)size);
        goto fail;
    }
    if (s->header_len > ST_MAX_HEADER || s->header_len < 2) {
        err_setf(err, "%s: header length %llu out of range", path,
                 (unsigned long long)s->header_len);
        goto fail;
    }
    s->data_start = 8 + s->header_len;
    if (!(s->header = malloc((size_t)s->header_len + 1))) {
        err_setf(err, "%s: out of memory", path);
        goto fail;
    }
    if (pread_full(s->fd, s->header, (size_t)s->header_len, 8, path, err)) goto fail;
    s->header[s->header_len] = '\0';
    if (parse_header(s, size - s->data_start, err)) goto fail;
    return s;
fail:
    ckpt_st_close(&s);
    return NULL;
}

int64_t ckpt_st_count(const ckpt_st_t *st) {
    return st->n;
}

const ckpt_st_tensor_t *ckpt_st_at(const ckpt_st_t *st, int64_t i) {
    return i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}

const ckpt_st_tensor_t *ckpt_st_find(const ckpt_st_t *st, const char *name) {
    for (int64_t i = 0; i < st->n; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

const char *ckpt_st_metadata(const ckpt_st_t *st, const char *key) {
    return st->meta ? json_string_value(json_object_get(st->meta, key)) : NULL;
}

const char *ckpt_st_header(const ckpt_st_t *st, uint64_t *len) {
    if (len) *len = st->header_len;
    return st->header;
}

/* IEEE half → float, exact (subnormals, infinities and NaNs included). */
static float f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        float f = ldexpf((float)man, -24); /* subnormal (or zero): man · 2^-24 */
        return sign ? -f : f;
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float bf16_to_f32(uint16_t h) {
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static const ckpt_st_tensor_t *find_sized(const ckpt_st_t *st, const char *name, int64_t n,
                                          err_t *err) {
    const ckpt_st_tensor_t *t = ckpt_st_find(st, name);
    if (!t) {
        err_setf(err, "%s: missing tensor %s", st->path, name);
        return NULL;
    }
    if (t->numel != n) {
        err_setf(err, "%s: %s: %lld values, expected %lld", st->path, name, (long long)t->numel,
                 (long long)n);
        return NULL;
    }
    return t;
}

int ckpt_st_read_f32(const ckpt_st_t *st, const char *name, float *out, int64_t n, err_t *err) {
    const ckpt_st_tensor_t *t = find_sized(st, name, n, err);
    if (!t) return -1;
    const uint64_t off = st->data_start + t->begin, bytes = t->end - t->begin;
    switch (t->dtype) {
    case CKPT_DT_F32:
        return pread_full(st->fd, out, (size_t)bytes, off, st->path, err);
    case CKPT_DT_F16:
    case CKPT_DT_BF16: {
        /* Read the halves into the back half of out, then widen front to back: writing
         * out[i] (bytes 4i..4i+3) never reaches a half not yet read (at 2n+2j, j > i). */
        uint8_t *half = (uint8_t *)out + 2 * (size_t)n;
        if (pread_full(st->fd, half, (size_t)bytes, off, st->path, err)) return -1;
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(half[2 * i] | half[2 * i + 1] << 8);
            out[i] = t->dtype == CKPT_DT_F16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
        return 0;
    }
    default:
        return err_setf(err, "%s: %s: dtype %s cannot be read as float32 (F32, F16 and BF16 can)",
                        st->path, name, dtypes[t->dtype].name);
    }
}

int ckpt_st_read_i32(const ckpt_st_t *st, const char *name, int32_t *out, int64_t n, err_t *err) {
    const ckpt_st_tensor_t *t = find_sized(st, name, n, err);
    if (!t) return -1;
    if (t->dtype != CKPT_DT_I32)
        return err_setf(err, "%s: %s: dtype %s, expected I32", st->path, name,
                        dtypes[t->dtype].name);
    return pread_full(st->fd, out, (size_t)(t->end - t->begin), st->data_start + t->begin, st->path,
                      err);
}

/* ---- config.json ---------------------------------------------------------------------- */

ckpt_meta_t ckpt_meta_default(void) {
    ckpt_meta_t m = {.template_name = "", .eos_id = -1, .pad_id = -1, .reward_bias = 0.0};
    return m;
}

/* An integer field: missing → *out unchanged (when optional) or an error; null counts as
 * missing. */
static int cfg_int(const json_t *root, const char *key, bool required, int64_t *out,
                   const char *path, err_t *err) {
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return err_setf(err, "%s: missing \"%s\"", path, key);
        return 0;
    }
    if (!json_is_integer(v)) return err_setf(err, "%s: \"%s\" is not an integer", path, key);
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Token-id fields: -1 stands for null/absent; anything else must be a vocabulary id. */
static int cfg_token(const json_t *obj, const char *key, int64_t V, int32_t *out, const char *path,
                     err_t *err) {
    int64_t id = *out;
    if (cfg_int(obj, key, false, &id, path, err)) return -1;
    if (id < -1 || id >= V)
        return err_setf(err, "%s: \"%s\" %lld is not a token id (vocab_size %lld)", path, key,
                        (long long)id, (long long)V);
    *out = (int32_t)id;
    return 0;
}

/* Settings of GPT2Config that change the math: we implement GPT-2 as released, so any other
 * value is an error rather than a silently different model. */
static int cfg_check_variant(const json_t *root, int64_t C, const char *path, err_t *err) {
    int64_t inner = 4 * C;
    if (cfg_int(root, "n_inner", false, &inner, path, err)) return -1;
    if (inner != 4 * C)
        return err_setf(err, "%s: n_inner %lld not supported (only 4 * n_embd)", path,
                        (long long)inner);
    const json_t *act = json_object_get(root, "activation_function");
    if (act && (!json_is_string(act) || (strcmp(json_string_value(act), "gelu_new") &&
                                         strcmp(json_string_value(act), "gelu_pytorch_tanh"))))
        return err_setf(err, "%s: activation_function not supported (only gelu_new)", path);
    static const struct {
        const char *key;
        bool want;
    } flags[] = {{"scale_attn_weights", true},
                 {"scale_attn_by_inverse_layer_idx", false},
                 {"reorder_and_upcast_attn", false},
                 {"add_cross_attention", false},
                 {"tie_word_embeddings", true}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const json_t *v = json_object_get(root, flags[i].key);
        if (v && (!json_is_boolean(v) || json_is_true(v) != flags[i].want))
            return err_setf(err, "%s: \"%s\" must be %s (GPT-2 as released)", path, flags[i].key,
                            flags[i].want ? "true" : "false");
    }
    return 0;
}

static int cfg_head(const json_t *root, gpt_head_t *head, const char *path, err_t *err) {
    const json_t *arch = json_object_get(root, "architectures");
    *head = GPT_HEAD_LM; /* a config without "architectures" is a plain GPT-2 */
    if (!arch || json_is_null(arch)) return 0;
    const char *a = json_string_value(json_array_get(arch, 0));
    if (!json_is_array(arch) || json_array_size(arch) != 1 || !a)
        return err_setf(err, "%s: \"architectures\" must be a list of one name", path);
    if (!strcmp(a, "GPT2LMHeadModel")) return 0;
    if (strcmp(a, "GPT2ForSequenceClassification"))
        return err_setf(err,
                        "%s: architecture \"%s\" not supported (GPT2LMHeadModel or "
                        "GPT2ForSequenceClassification)",
                        path, a);
    /* transformers defaults num_labels to 2 unless id2label says otherwise. */
    int64_t labels = 2;
    const json_t *id2label = json_object_get(root, "id2label");
    if (json_is_object(id2label)) labels = (int64_t)json_object_size(id2label);
    if (cfg_int(root, "num_labels", false, &labels, path, err)) return -1;
    if (labels != 1)
        return err_setf(err, "%s: GPT2ForSequenceClassification with num_labels %lld (only 1)",
                        path, (long long)labels);
    *head = GPT_HEAD_SCORE;
    return 0;
}

static int cfg_meta(const json_t *root, int64_t V, ckpt_meta_t *meta, const char *path,
                    err_t *err) {
    *meta = ckpt_meta_default();
    if (cfg_token(root, "eos_token_id", V, &meta->eos_id, path, err) ||
        cfg_token(root, "pad_token_id", V, &meta->pad_id, path, err))
        return -1;
    const json_t *r = json_object_get(root, "rlhf");
    if (!r) return 0;
    if (!json_is_object(r)) return err_setf(err, "%s: \"rlhf\" is not an object", path);
    const json_t *tmpl = json_object_get(r, "template"), *bias = json_object_get(r, "reward_bias");
    if (tmpl && !json_is_null(tmpl)) {
        if (!json_is_string(tmpl) || json_string_length(tmpl) >= sizeof meta->template_name)
            return err_setf(err, "%s: rlhf.template is not a string of at most %zu bytes", path,
                            sizeof meta->template_name - 1);
        snprintf(meta->template_name, sizeof meta->template_name, "%s", json_string_value(tmpl));
    }
    if (bias && !json_is_null(bias)) {
        if (!json_is_number(bias))
            return err_setf(err, "%s: rlhf.reward_bias is not a number", path);
        meta->reward_bias = json_number_value(bias);
    }
    if (cfg_token(r, "eos_id", V, &meta->eos_id, path, err) ||
        cfg_token(r, "pad_id", V, &meta->pad_id, path, err)) {
        err_prefixf(err, "rlhf: ");
        return -1;
    }
    return 0;
}

/* Sizes: positive, C % NH == 0, and small enough that no parameter count overflows. */
static int cfg_sizes(const json_t *root, gpt_config_t *cfg, const char *path, err_t *err) {
    int64_t V = 0, T = 0, L = 0, NH = 0, C = 0;
    if (cfg_int(root, "vocab_size", true, &V, path, err) ||
        cfg_int(root, "n_layer", true, &L, path, err) ||
        cfg_int(root, "n_head", true, &NH, path, err) ||
        cfg_int(root, "n_embd", true, &C, path, err))
        return -1;
    T = -1;
    if (cfg_int(root, "n_positions", false, &T, path, err) ||
        (T == -1 && cfg_int(root, "n_ctx", true, &T, path, err)))
        return -1;
    if (V <= 0 || T <= 0 || L <= 0 || NH <= 0 || C <= 0)
        return err_setf(err,
                        "%s: vocab_size, n_positions, n_layer, n_head and n_embd must be "
                        "positive",
                        path);
    if (C % NH)
        return err_setf(err, "%s: n_embd %lld is not a multiple of n_head %lld", path, (long long)C,
                        (long long)NH);
    const double total = ((double)V + (double)T + 12.0 * (double)L * (double)C) * (double)C;
    if (V > INT32_MAX || T > INT32_MAX || L > 65536 || C > 1048576 || total > 1e12)
        return err_setf(err, "%s: model sizes out of range", path);
    double eps = 1e-5; /* GPT2Config's default */
    const json_t *e = json_object_get(root, "layer_norm_epsilon");
    if (e && !json_is_null(e)) {
        if (!json_is_number(e))
            return err_setf(err, "%s: \"layer_norm_epsilon\" is not a number", path);
        eps = json_number_value(e);
    }
    if (!(eps > 0.0) || !isfinite((float)eps))
        return err_setf(err, "%s: layer_norm_epsilon must be positive", path);
    *cfg = (gpt_config_t){.vocab_size = V,
                          .n_positions = T,
                          .n_layer = L,
                          .n_head = NH,
                          .n_embd = C,
                          .ln_eps = (float)eps};
    return cfg_check_variant(root, C, path, err);
}

int ckpt_load_config(const char *dir, gpt_config_t *cfg, gpt_head_t *head, ckpt_meta_t *meta,
                     err_t *err) {
    char path[PATH_CAP];
    if (read_path(path, dir, "config.json", err)) return -1;
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (je.line < 0) return err_setf(err, "%s: %s", path, je.text);
        return err_setf(err, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    }
    gpt_config_t c;
    gpt_head_t h;
    ckpt_meta_t m;
    int rc = -1;
    if (!json_is_object(root)) {
        err_setf(err, "%s: not a JSON object", path);
        goto done;
    }
    if (cfg_sizes(root, &c, path, err) || cfg_head(root, &h, path, err) ||
        cfg_meta(root, c.vocab_size, &m, path, err))
        goto done;
    *cfg = c;
    if (head) *head = h;
    if (meta) *meta = m;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

/* ---- ckpt_load ------------------------------------------------------------------------ */

#define HF_PREFIX "transformer."

/* Buffers that are not parameters: GPT-2's causal mask (attn.bias, 1×1×T×T) and the old
 * masked_bias scalar; and lm_head.weight, which is wte itself in a tied GPT-2. */
static bool ignored_name(const char *key) {
    if (!strcmp(key, "lm_head.weight")) return true;
    int end = 0;
    long layer;
    if (sscanf(key, "h.%ld.attn.bias%n", &layer, &end) == 1 && end && key[end] == '\0') return true;
    end = 0;
    return sscanf(key, "h.%ld.attn.masked_bias%n", &layer, &end) == 1 && end && key[end] == '\0';
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Pairs every model tensor with one file tensor (match[i] = index into st or -1). Errors on a
 * name given twice (with and without the prefix) or a tensor the model does not have. */
static int match_tensors(const ckpt_st_t *st, const gpt_tensor_t *want, int64_t n, int64_t *match,
                         const char *path, err_t *err) {
    for (int64_t i = 0; i < n; i++) match[i] = -1;
    const char *unexpected = NULL;
    for (int64_t k = 0; k < st->n; k++) {
        const char *name = st->tensors[k].name, *key = name;
        if (!strncmp(key, HF_PREFIX, strlen(HF_PREFIX))) key += strlen(HF_PREFIX);
        if (ignored_name(key)) continue;
        int64_t i = 0;
        while (i < n && strcmp(want[i].name, key)) i++;
        if (i == n) {
            if (!unexpected) unexpected = name;
            continue;
        }
        if (match[i] >= 0)
            return err_setf(err, "%s: %s given twice (%s and %s)", path, want[i].name,
                            st->tensors[match[i]].name, name);
        match[i] = k;
    }
    for (int64_t i = 0; i < n; i++)
        if (match[i] < 0) return err_setf(err, "%s: missing tensor %s", path, want[i].name);
    if (unexpected)
        return err_setf(err, "%s: unexpected tensor %s for this architecture", path, unexpected);
    return 0;
}

/* Checks dtype and shape of every matched tensor, then reads them all. */
static int read_tensors(const ckpt_st_t *st, const gpt_tensor_t *want, int64_t n,
                        const int64_t *match, const char *path, err_t *err) {
    for (int64_t i = 0; i < n; i++) {
        const ckpt_st_tensor_t *t = &st->tensors[match[i]];
        bool same = t->ndim == want[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == want[i].shape[d];
        if (!same) {
            char got[128], exp[128];
            shape_str(got, sizeof got, t->ndim, t->shape);
            shape_str(exp, sizeof exp, want[i].ndim, want[i].shape);
            return err_setf(err, "%s: %s: shape %s, expected %s", path, t->name, got, exp);
        }
        if (t->dtype != CKPT_DT_F32 && t->dtype != CKPT_DT_F16 && t->dtype != CKPT_DT_BF16)
            return err_setf(err, "%s: %s: dtype %s not supported for weights (F32, F16, BF16)",
                            path, t->name, dtypes[t->dtype].name);
    }
    for (int64_t i = 0; i < n; i++)
        if (ckpt_st_read_f32(st, st->tensors[match[i]].name, want[i].param, want[i].numel, err))
            return -1;
    return 0;
}

gpt_model_t *ckpt_load(const char *dir, ckpt_meta_t *meta, err_t *err) {
    gpt_config_t cfg;
    gpt_head_t head;
    ckpt_meta_t m;
    char path[PATH_CAP];
    ckpt_st_t *st = NULL;
    gpt_model_t *model = NULL;
    gpt_tensor_t *want = NULL;
    int64_t *match = NULL;
    if (ckpt_load_config(dir, &cfg, &head, &m, err) ||
        read_path(path, dir, "model.safetensors", err) || !(st = ckpt_st_open(path, err)))
        goto fail;
    if (!(model = gpt_new(&cfg, head, err))) {
        err_prefixf(err, "%s/config.json: ", dir);
        goto fail;
    }
    const int64_t n = gpt_tensors(model, NULL, 0);
    want = malloc((size_t)n * sizeof *want);
    match = malloc((size_t)n * sizeof *match);
    if (!want || !match) {
        err_setf(err, "%s: out of memory", path);
        goto fail;
    }
    gpt_tensors(model, want, n);
    if (match_tensors(st, want, n, match, path, err) || read_tensors(st, want, n, match, path, err))
        goto fail;
    free(want);
    free(match);
    ckpt_st_close(&st);
    if (meta) *meta = m;
    return model;
fail:
    free(want);
    free(match);
    ckpt_st_close(&st);
    gpt_destroy(&model);
    return NULL;
}

int ckpt_write_atomic(const char *path, const void *data, size_t len, err_t *err) {
    return fs_write_atomic(path, data, len, err);
}

/* fwrite that names the file on failure. */
static int put_bytes(FILE *f, const void *data, size_t len, const char *path, err_t *err) {
    if (len && fwrite(data, 1, len, f) != len)
        return err_setf(err, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

/* ---- safetensors writer and ckpt_save --------------------------------------------------- */

/* A float as Python's repr would write it when it came from a float32: the shortest decimal
 * that reads back as the same float ("1e-05", not "9.9999997473787516e-06"). */
static void fmt_float(char *buf, size_t cap, float v) {
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".eni")) strncat(buf, ".0", cap - strlen(buf) - 1);
}

/* A double, shortest round trip ("0.25", "-1.5e-07", "0.0"). */
static void fmt_double(char *buf, size_t cap, double v) {
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".eni")) strncat(buf, ".0", cap - strlen(buf) - 1);
}

static void put_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void put_token(FILE *f, const char *key, int32_t id, const char *indent) {
    if (id < 0)
        fprintf(f, ",\n%s\"%s\": null", indent, key);
    else
        fprintf(f, ",\n%s\"%s\": %d", indent, key, (int)id);
}

/* config.json as transformers' GPT2Config writes it (the fields of the fixtures, in their
 * order), plus our "rlhf" block. Caller frees the returned string. */
static char *config_json(const gpt_model_t *model, const ckpt_meta_t *meta, size_t *len) {
    char *buf = NULL, eps[32], bias[40];
    FILE *f = open_memstream(&buf, len);
    if (!f) return NULL;
    const gpt_config_t *c = &model->cfg;
    const bool score = model->head == GPT_HEAD_SCORE;
    fmt_float(eps, sizeof eps, c->ln_eps);
    fmt_double(bias, sizeof bias, meta->reward_bias);
    fprintf(f,
            "{\n  \"architectures\": [\n    \"%s\"\n  ],\n  \"model_type\": \"gpt2\",\n"
            "  \"n_embd\": %lld,\n  \"n_layer\": %lld,\n  \"n_head\": %lld,\n"
            "  \"n_positions\": %lld,\n  \"n_ctx\": %lld,\n  \"vocab_size\": %lld,\n"
            "  \"n_inner\": null,\n  \"activation_function\": \"gelu_new\",\n"
            "  \"layer_norm_epsilon\": %s,\n  \"resid_pdrop\": 0.0,\n  \"embd_pdrop\": 0.0,\n"
            "  \"attn_pdrop\": 0.0,\n  \"scale_attn_weights\": true,\n"
            "  \"tie_word_embeddings\": true",
            score ? "GPT2ForSequenceClassification" : "GPT2LMHeadModel", (long long)c->n_embd,
            (long long)c->n_layer, (long long)c->n_head, (long long)c->n_positions,
            (long long)c->n_positions, (long long)c->vocab_size, eps);
    put_token(f, "bos_token_id", meta->eos_id, "  ");
    put_token(f, "eos_token_id", meta->eos_id, "  ");
    fprintf(f, ",\n  \"torch_dtype\": \"float32\"");
    if (score) {
        fprintf(f, ",\n  \"num_labels\": 1,\n  \"id2label\": {\n    \"0\": \"LABEL_0\"\n  },\n"
                   "  \"label2id\": {\n    \"LABEL_0\": 0\n  }");
        put_token(f, "pad_token_id", meta->pad_id, "  ");
    }
    fprintf(f, ",\n  \"rlhf\": {\n    \"template\": ");
    put_json_string(f, meta->template_name);
    put_token(f, "eos_id", meta->eos_id, "    ");
    put_token(f, "pad_id", meta->pad_id, "    ");
    fprintf(f, ",\n    \"reward_bias\": %s\n  }\n}\n", bias);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* One tensor of the file being written; data NULL means GPT-2's causal-mask buffer
 * (1, 1, T, T), lower triangle 1.0f, generated row by row. */
typedef struct {
    char name[96];
    int ndim;
    int64_t shape[4];
    int64_t numel;
    const float *data;
} out_tensor_t;

/* The tensors a model directory holds, in the fixtures' order. *out is malloc'd. */
static int64_t out_tensors(const gpt_model_t *model, out_tensor_t **out) {
    const int64_t n = gpt_tensors(model, NULL, 0), L = model->cfg.n_layer,
                  T = model->cfg.n_positions;
    const bool lm = model->head == GPT_HEAD_LM;
    const int64_t total = n + (lm ? L : 0);
    gpt_tensor_t *g = malloc((size_t)n * sizeof *g);
    out_tensor_t *o = calloc((size_t)total, sizeof *o);
    if (!g || !o) {
        free(g);
        free(o);
        return -1;
    }
    gpt_tensors(model, g, n);
    for (int64_t i = 0; i < n; i++) {
        /* save_pretrained of GPT2ForSequenceClassification prefixes the trunk, not the head */
        const bool prefix = !lm && strcmp(g[i].name, "score.weight");
        snprintf(o[i].name, sizeof o[i].name, "%s%s", prefix ? HF_PREFIX : "", g[i].name);
        o[i].ndim = g[i].ndim;
        o[i].shape[0] = g[i].shape[0];
        o[i].shape[1] = g[i].shape[1];
        o[i].numel = g[i].numel;
        o[i].data = g[i].param;
    }
    for (int64_t l = 0; lm && l < L; l++) {
        out_tensor_t *t = &o[n + l];
        snprintf(t->name, sizeof t->name, "h.%lld.attn.bias", (long long)l);
        t->ndim = 4;
        t->shape[0] = t->shape[1] = 1;
        t->shape[2] = t->shape[3] = T;
        t->numel = T * T;
    }
    free(g);
    *out = o;
    return total;
}

/* The header JSON, space-padded to a multiple of 8 bytes as the reference writer pads it. */
static char *st_header(const out_tensor_t *t, int64_t n, size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) return NULL;
    uint64_t off = 0;
    fputc('{', f);
    for (int64_t i = 0; i < n; i++) {
        fprintf(f, "\"%s\":{\"dtype\":\"F32\",\"shape\":[", t[i].name);
        for (int d = 0; d < t[i].ndim; d++)
            fprintf(f, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        const uint64_t end = off + 4 * (uint64_t)t[i].numel;
        fprintf(f, "],\"data_offsets\":[%llu,%llu]},", (unsigned long long)off,
                (unsigned long long)end);
        off = end;
    }
    fprintf(f, "\"__metadata__\":{\"format\":\"pt\"}}");
    for (long pos = ftell(f); pos % 8; pos++) fputc(' ', f);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int st_write_data(FILE *f, const out_tensor_t *t, const char *path, err_t *err) {
    if (t->data) return put_bytes(f, t->data, 4 * (size_t)t->numel, path, err);
    const int64_t T = t->shape[3];
    float *row = malloc((size_t)T * sizeof *row);
    if (!row) return err_setf(err, "%s: out of memory", path);
    int rc = 0;
    for (int64_t r = 0; r < T && !rc; r++) {
        for (int64_t c = 0; c < T; c++) row[c] = c <= r ? 1.0f : 0.0f;
        rc = put_bytes(f, row, (size_t)T * sizeof *row, path, err);
    }
    free(row);
    return rc;
}

/* Writes the model's model.safetensors into the set (path names it in messages). */
static int st_write_model(fs_set_t *set, const char *path, const gpt_model_t *model, err_t *err) {
    out_tensor_t *t = NULL;
    char *hdr = NULL;
    size_t hlen = 0;
    int rc = -1;
    FILE *f;
    const int64_t n = out_tensors(model, &t);
    if (n < 0 || !(hdr = st_header(t, n, &hlen))) {
        err_setf(err, "%s: out of memory", path);
        goto done;
    }
    uint8_t len8[8];
    put_le64(len8, hlen);
    if (!(f = fs_set_add(set, "model.safetensors", err)) || put_bytes(f, len8, 8, path, err) ||
        put_bytes(f, hdr, hlen, path, err))
        goto done;
    for (int64_t i = 0; i < n; i++)
        if (st_write_data(f, &t[i], path, err)) goto done;
    rc = 0;
done:
    free(hdr);
    free(t);
    return rc;
}

static int check_meta(const gpt_model_t *model, const ckpt_meta_t *meta, const char *dir,
                      err_t *err) {
    const int64_t V = model->cfg.vocab_size;
    if (meta->eos_id < -1 || meta->eos_id >= V || meta->pad_id < -1 || meta->pad_id >= V)
        return err_setf(err, "%s: eos_id %d / pad_id %d outside the vocabulary of %lld", dir,
                        (int)meta->eos_id, (int)meta->pad_id, (long long)V);
    if (!isfinite(meta->reward_bias)) return err_setf(err, "%s: reward_bias is not finite", dir);
    if (!memchr(meta->template_name, '\0', sizeof meta->template_name))
        return err_setf(err, "%s: template name not terminated", dir);
    return 0;
}

/* True when a and b name the same existing directory. */
static bool same_dir(const char *a, const char *b) {
    struct stat sa, sb;
    return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int ckpt_save(const char *dir, const gpt_model_t *model, const ckpt_meta_t *meta,
              const char *tokenizer_dir, err_t *err) {
    const ckpt_meta_t def = ckpt_meta_default();
    if (!meta) meta = &def;
    if (check_meta(model, meta, dir, err)) return -1;
    char path[PATH_CAP], src[PATH_CAP];
    size_t clen = 0;
    char *cfg = config_json(model, meta, &clen);
    if (!cfg) return err_setf(err, "%s: out of memory", dir);
    fs_set_t *set = fs_set_begin(dir, err);
    if (!set || fs_set_write(set, "config.json", cfg, clen, err) ||
        join_path(path, dir, "model.safetensors", err) || st_write_model(set, path, model, err))
        goto fail;
    if (tokenizer_dir && !same_dir(tokenizer_dir, dir)) {
        const char *files[] = {"vocab.json", "merges.txt"};
        for (int i = 0; i < 2; i++)
            if (join_path(src, tokenizer_dir, files[i], err) ||
                fs_set_copy(set, files[i], src, err))
                goto fail;
    }
    free(cfg);
    return fs_set_commit(&set, err);
fail:
    fs_set_abort(&set);
    free(cfg);
    return -1;
}

/* ---- train_state.bin ------------------------------------------------------------------ *
 * Layout (all integers little-endian):
 *   0   8  magic "RLHFSTAT"
 *   8   4  version (1)
 *   12  4  number of sections n
 *   16  8  total file size in bytes (a truncated file is named as such, not as corrupt)
 *   24  8  checksum of every byte from offset 32 to the end (table and data)
 *   32  n × (64-byte NUL-padded name, 8-byte length)
 *   then the sections' bytes, in table order, back to back. */
#define STATE_MAGIC "RLHFSTAT"
enum {
    STATE_VERSION = 1,
    STATE_HDR = 32,
    STATE_NAME = 64,
    STATE_ENTRY = 72,
    STATE_MAX_SECTIONS = 1 << 16
};

/* A streaming 64-bit hash (the xxHash64 construction): four independent multiply-rotate
 * lanes, so hashing a GB of AdamW moments costs a fraction of writing it. It detects
 * accidental corruption; it is not a cryptographic checksum. */
#define H1 0x9E3779B185EBCA87ull
#define H2 0xC2B2AE3D27D4EB4Full
#define H3 0x165667B19E3779F9ull
#define H4 0x85EBCA77C2B2AE63ull
#define H5 0x27D4EB2F165667C5ull
typedef struct {
    uint64_t v[4];
    uint8_t buf[32];
    size_t nbuf;
    uint64_t total;
} hash_t;

static uint64_t rotl64(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

static uint64_t hash_round(uint64_t acc, uint64_t in) {
    return rotl64(acc + in * H2, 31) * H1;
}

static uint64_t word64(const uint8_t *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static void hash_init(hash_t *h) {
    memset(h, 0, sizeof *h);
    h->v[0] = H1 + H2;
    h->v[1] = H2;
    h->v[2] = 0;
    h->v[3] = 0 - H1;
}

static void hash_block(hash_t *h, const uint8_t *p) {
    for (int i = 0; i < 4; i++) h->v[i] = hash_round(h->v[i], word64(p + 8 * i));
}

static void hash_update(hash_t *h, const void *data, size_t len) {
    if (!len) return;
    const uint8_t *p = data;
    h->total += len;
    if (h->nbuf) {
        size_t take = 32 - h->nbuf < len ? 32 - h->nbuf : len;
        memcpy(h->buf + h->nbuf, p, take);
        h->nbuf += take, p += take, len -= take;
        if (h->nbuf < 32) return;
        hash_block(h, h->buf);
        h->nbuf = 0;
    }
    for (; len >= 32; p += 32, len -= 32) hash_block(h, p);
    memcpy(h->buf, p, len);
    h->nbuf = len;
}

static uint64_t hash_final(const hash_t *h) {
    uint64_t x;
    if (h->total >= 32) {
        x = rotl64(h->v[0], 1) + rotl64(h->v[1], 7) + rotl64(h->v[2], 12) + rotl64(h->v[3], 18);
        for (int i = 0; i < 4; i++) x = (x ^ hash_round(0, h->v[i])) * H1 + H4;
    } else {
        x = H5;
    }
    x += h->total;
    const uint8_t *p = h->buf;
    size_t n = h->nbuf;
    for (; n >= 8; p += 8, n -= 8) x = rotl64(x ^ hash_round(0, word64(p)), 27) * H1 + H4;
    for (; n > 0; p++, n--) x = rotl64(x ^ (*p * H5), 11) * H1;
    x ^= x >> 33;
    x *= H2;
    x ^= x >> 29;
    x *= H3;
    return x ^ (x >> 32);
}

static int check_sections(const ckpt_section_t *s, int n, const char *path, err_t *err) {
    if (n < 0 || n > STATE_MAX_SECTIONS) return err_setf(err, "%s: %d sections", path, n);
    for (int i = 0; i < n; i++) {
        if (!s[i].name || !s[i].name[0] || strlen(s[i].name) >= STATE_NAME)
            return err_setf(err, "%s: section %d: name empty or longer than %d bytes", path, i,
                            STATE_NAME - 1);
        if (s[i].len && !s[i].data)
            return err_setf(err, "%s: section %s: no data", path, s[i].name);
        for (int j = 0; j < i; j++)
            if (!strcmp(s[i].name, s[j].name))
                return err_setf(err, "%s: section %s listed twice", path, s[i].name);
    }
    return 0;
}

int ckpt_state_save(const char *path, const ckpt_section_t *sections, int n, err_t *err) {
    if (check_sections(sections, n, path, err)) return -1;
    const size_t tlen = (size_t)n * STATE_ENTRY;
    uint8_t hdr[STATE_HDR] = {0}, *table = calloc(1, tlen ? tlen : 1);
    if (!table) return err_setf(err, "%s: out of memory", path);
    uint64_t size = STATE_HDR + tlen;
    for (int i = 0; i < n; i++) {
        memcpy(table + (size_t)i * STATE_ENTRY, sections[i].name, strlen(sections[i].name));
        put_le64(table + (size_t)i * STATE_ENTRY + STATE_NAME, sections[i].len);
        size += sections[i].len;
    }
    hash_t h;
    hash_init(&h);
    hash_update(&h, table, tlen);
    for (int i = 0; i < n; i++) hash_update(&h, sections[i].data, sections[i].len);
    memcpy(hdr, STATE_MAGIC, 8);
    put_le32(hdr + 8, STATE_VERSION);
    put_le32(hdr + 12, (uint32_t)n);
    put_le64(hdr + 16, size);
    put_le64(hdr + 24, hash_final(&h));
    /* one file, streamed: a set of one (the AdamW moments are too big to join in memory) */
    char dir[PATH_CAP];
    const char *name = split_path(path, dir);
    int rc = name ? 0 : err_setf(err, "%s: path too long", path);
    fs_set_t *set = rc ? NULL : fs_set_begin(dir, err);
    FILE *f = set ? fs_set_add(set, name, err) : NULL;
    rc = !f || put_bytes(f, hdr, sizeof hdr, path, err) || put_bytes(f, table, tlen, path, err);
    for (int i = 0; i < n && !rc; i++)
        rc = put_bytes(f, sections[i].data, sections[i].len, path, err);
    if (rc)
        fs_set_abort(&set);
    else
        rc = fs_set_commit(&set, err);
    free(table);
    return rc ? -1 : 0;
}

/* Reads and checks the header and table; *table is malloc'd (n × STATE_ENTRY bytes). */
static int state_read_table(int fd, const char *path, uint8_t **table, uint32_t *count,
                            uint64_t *sum, err_t *err) {
    struct stat sb;
    uint8_t hdr[STATE_HDR];
    if (fstat(fd, &sb)) return err_setf(err, "%s: %s", path, strerror(errno));
    const uint64_t size = (uint64_t)sb.st_size;
    if (size < STATE_HDR)
        return err_setf(err, "%s: %llu bytes: truncated training-state file", path,
                        (unsigned long long)size);
    if (pread_full(fd, hdr, STATE_HDR, 0, path, err)) return -1;
    if (memcmp(hdr, STATE_MAGIC, 8)) return err_setf(err, "%s: not a training-state file", path);
    const uint32_t version = get_le32(hdr + 8), n = get_le32(hdr + 12);
    if (version != STATE_VERSION)
        return err_setf(err, "%s: training-state version %u, expected %d", path, version,
                        STATE_VERSION);
    if (get_le64(hdr + 16) != size)
        return err_setf(err, "%s: %llu bytes, the file says %llu: truncated or extended", path,
                        (unsigned long long)size, (unsigned long long)get_le64(hdr + 16));
    if (n > STATE_MAX_SECTIONS || STATE_HDR + (uint64_t)n * STATE_ENTRY > size)
        return err_setf(err, "%s: bad section count %u", path, n);
    uint8_t *tab = malloc((size_t)n * STATE_ENTRY + 1);
    if (!tab) return err_setf(err, "%s: out of memory", path);
    uint64_t total = STATE_HDR + (uint64_t)n * STATE_ENTRY;
    if (pread_full(fd, tab, (size_t)n * STATE_ENTRY, STATE_HDR, path, err)) goto fail;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = tab + (size_t)i * STATE_ENTRY;
        const uint64_t len = get_le64(e + STATE_NAME);
        if (!memchr(e, '\0', STATE_NAME) || len > size || total + len > size) {
            err_setf(err, "%s: section %u: bad name or length (corrupted file)", path, i);
            goto fail;
        }
        total += len;
    }
    if (total != size) {
        err_setf(err, "%s: sections hold %llu bytes, the file %llu (corrupted file)", path,
                 (unsigned long long)total, (unsigned long long)size);
        goto fail;
    }
    *table = tab;
    *count = n;
    *sum = get_le64(hdr + 24);
    return 0;
fail:
    free(tab);
    return -1;
}

/* Hashes bytes [STATE_HDR, size) of the file and compares with the stored checksum. */
static int state_verify(int fd, const char *path, uint64_t size, uint64_t want, err_t *err) {
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf) return err_setf(err, "%s: out of memory", path);
    hash_t h;
    hash_init(&h);
    int rc = 0;
    for (uint64_t off = STATE_HDR; off < size && !rc; off += CHUNK) {
        const size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        rc = pread_full(fd, buf, n, off, path, err);
        hash_update(&h, buf, n);
    }
    free(buf);
    if (!rc && hash_final(&h) != want)
        rc = err_setf(err, "%s: checksum mismatch: the training-state file is corrupted", path);
    return rc;
}

int ckpt_state_load(const char *path, const ckpt_section_t *sections, int n, err_t *err) {
    char real[PATH_CAP];
    if (check_sections(sections, n, path, err) || fs_resolve(path, real, sizeof real, err))
        return -1;
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_setf(err, "%s: %s", path, strerror(errno));
    uint8_t *tab = NULL;
    uint64_t *offs = calloc((size_t)n + 1, sizeof *offs), sum = 0;
    uint32_t count = 0;
    int rc = -1;
    if (!offs) {
        err_setf(err, "%s: out of memory", path);
        goto done;
    }
    if (state_read_table(fd, path, &tab, &count, &sum, err)) goto done;
    uint64_t size = STATE_HDR + (uint64_t)count * STATE_ENTRY;
    for (uint32_t k = 0; k < count; k++)
        size += get_le64(tab + (size_t)k * STATE_ENTRY + STATE_NAME);
    if (state_verify(fd, path, size, sum, err)) goto done;
    /* Every requested section exists with the right length before any buffer is written. */
    for (int i = 0; i < n; i++) {
        uint64_t off = STATE_HDR + (uint64_t)count * STATE_ENTRY, len = 0;
        uint32_t k = 0;
        for (; k < count; k++) {
            const uint8_t *e = tab + (size_t)k * STATE_ENTRY;
            len = get_le64(e + STATE_NAME);
            if (!strcmp((const char *)e, sections[i].name)) break;
            off += len;
        }
        if (k == count) {
            err_setf(err, "%s: section %s missing", path, sections[i].name);
            goto done;
        }
        if (len != sections[i].len) {
            err_setf(err, "%s: section %s: %llu bytes, expected %zu", path, sections[i].name,
                     (unsigned long long)len, sections[i].len);
            goto done;
        }
        offs[i] = off;
    }
    for (int i = 0; i < n; i++)
        if (pread_full(fd, sections[i].data, sections[i].len, offs[i], path, err)) goto done;
    rc = 0;
done:
    free(offs);
    free(tab);
    close(fd);
    return rc;
}
