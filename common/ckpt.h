/* common/ckpt.h: model directories in Hugging Face GPT-2 layout (DESIGN.md §3) and the
 * training state that makes a run resume exactly.
 *   config.json        GPT-2 field names + our "rlhf" block (template, eos_id, pad_id, ...)
 *   model.safetensors  F32, Conv1D (in, out) layout, __metadata__ {"format": "pt"}; an LM as
 *                      the Hub snapshot names it (plus the h.N.attn.bias mask buffers), a score
 *                      model as save_pretrained writes GPT2ForSequenceClassification
 *                      ("transformer."-prefixed trunk + score.weight (1, C)).
 *   vocab.json, merges.txt (optional) byte-level BPE, copied from a tokenizer directory
 *   train_state.bin    named binary sections (AdamW moments, step, RNG, data position)
 * Every write is atomic (fs.h): the files of a save appear together, a state file whole. Loads
 * read through fs_resolve, so a save cut short by a crash is seen whole. A load validates
 * everything (names, shapes, dtypes, byte ranges) before it returns a model, so bad input
 * changes nothing. Errors name the file and the tensor. No global state. */
#ifndef RLHF_CKPT_H
#define RLHF_CKPT_H
#include "err.h"
#include "gpt.h"
#include "state.h"
#include <stddef.h>
#include <stdint.h>

/* Our block in config.json ("rlhf": {...}), ignored by transformers. */
typedef struct {
    char template_name[32]; /* prompt/response template, e.g. "rlhf-v1"; "" = none recorded */
    int32_t eos_id;         /* end-of-text id (50256 in GPT-2); -1 = unknown */
    int32_t pad_id;         /* id used for right padding; -1 = unknown */
    double reward_bias;     /* added to a reward model's raw score (DESIGN §4); 0 by default */
} ckpt_meta_t;

/* Meta with no information: template "", eos -1, pad -1, reward_bias 0. */
ckpt_meta_t ckpt_meta_default(void);

/* Loads DIR/config.json and DIR/model.safetensors into a new model (parameters only; call
 * gpt_alloc after). Head from config.json "architectures" (GPT2LMHeadModel → LM,
 * GPT2ForSequenceClassification → score). Accepts names with or without "transformer.",
 * ignores attn.bias / attn.masked_bias buffers, rejects missing tensors, wrong shapes,
 * unknown dtypes and byte ranges outside the file. meta may be NULL; when config.json has no
 * "rlhf" block, meta gets ckpt_meta_default() with eos_id from "eos_token_id".
 * Caller frees with gpt_destroy. NULL with err set ("DIR/model.safetensors: h.0.attn.c_attn.weight:
 * shape [48, 100], expected [48, 144]"). */
gpt_model_t *ckpt_load(const char *dir, ckpt_meta_t *meta, err_t *err);

/* Reads only DIR/config.json (no weights) and checks it: positive sizes, C % NH == 0, GPT-2's
 * math (gelu_new, n_inner 4C, tied embeddings), token ids within the vocabulary. head and meta
 * may be NULL. Outputs are written only on success. */
int ckpt_load_config(const char *dir, gpt_config_t *cfg, gpt_head_t *head, ckpt_meta_t *meta,
                     err_t *err);

/* Writes config.json and model.safetensors into dir (created if missing) as one set of files
 * (fs_set_*: they appear together or not at all). tokenizer_dir, when not NULL and not dir
 * itself, is a directory whose vocab.json and merges.txt are copied in, in the same set.
 * -1 with err set; a failed save leaves the old files intact. */
int ckpt_save(const char *dir, const gpt_model_t *model, const ckpt_meta_t *meta,
              const char *tokenizer_dir, err_t *err);

/* Writes len bytes to path atomically: the older name of fs_write_atomic (fs.h). */
int ckpt_write_atomic(const char *path, const void *data, size_t len, err_t *err);

/* Training state: a list of named byte sections (state.h), written as one file with a magic,
 * a version, section names and lengths and a checksum, so truncation or corruption is
 * detected. The caller keeps the memory; sections are copied on write and read into caller
 * buffers. ckpt_section_t is the older name of state_section_t. */
typedef state_section_t ckpt_section_t;

/* Saves the sections into path atomically. */
int ckpt_state_save(const char *path, const ckpt_section_t *sections, int n, err_t *err);
/* Loads every listed section from path into its data (lengths must match; sections in the
 * file that are not listed are ignored). All are verified (checksum, lengths) before any
 * caller buffer is written. -1 with err set ("run/train_state.bin: section adam.m: 1024
 * bytes, expected 2048"). */
int ckpt_state_load(const char *path, const ckpt_section_t *sections, int n, err_t *err);

/* ---- safetensors reader --------------------------------------------------------------------
 * A safetensors file is an 8-byte little-endian header length, a JSON header
 * {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}} and the data
 * area. ckpt_st_open validates the whole header before it returns: length within the file,
 * JSON, known dtypes, shape × dtype size == byte range, every range inside the data area, no
 * overlaps, no holes, no duplicate names (the checks of the reference implementation). Tensor
 * data is read on demand with pread, so a 500 MB file is never held twice in memory. */

typedef enum {
    CKPT_DT_BOOL,
    CKPT_DT_U8,
    CKPT_DT_I8,
    CKPT_DT_F8_E4M3,
    CKPT_DT_F8_E5M2,
    CKPT_DT_I16,
    CKPT_DT_U16,
    CKPT_DT_F16,
    CKPT_DT_BF16,
    CKPT_DT_I32,
    CKPT_DT_U32,
    CKPT_DT_F32,
    CKPT_DT_I64,
    CKPT_DT_U64,
    CKPT_DT_F64,
} ckpt_dtype_t;

#define CKPT_MAX_DIMS 8

typedef struct {
    const char *name; /* as in the header; borrowed until ckpt_st_close */
    ckpt_dtype_t dtype;
    int ndim; /* 0..CKPT_MAX_DIMS */
    int64_t shape[CKPT_MAX_DIMS];
    int64_t numel;       /* product of shape (1 for a scalar) */
    uint64_t begin, end; /* byte range inside the data area */
} ckpt_st_tensor_t;

typedef struct ckpt_st ckpt_st_t;

/* The dtype's name as safetensors spells it ("F32", "BF16") and its size in bytes. */
const char *ckpt_dtype_name(ckpt_dtype_t dtype);
int ckpt_dtype_size(ckpt_dtype_t dtype);

/* Opens and validates path (see above). Caller closes with ckpt_st_close. NULL with err set,
 * naming the file and, where there is one, the tensor ("m.safetensors: wte.weight:
 * data_offsets [0, 18624] beyond the 1000 bytes of data: truncated file"). */
ckpt_st_t *ckpt_st_open(const char *path, err_t *err);
/* Closes the file, frees everything and NULLs *st; accepts NULL. */
void ckpt_st_close(ckpt_st_t **st);

/* Tensors in header order: count, the i-th (0 <= i < count), or by exact name (NULL if
 * absent). Pointers stay valid until ckpt_st_close. */
int64_t ckpt_st_count(const ckpt_st_t *st);
const ckpt_st_tensor_t *ckpt_st_at(const ckpt_st_t *st, int64_t i);
const ckpt_st_tensor_t *ckpt_st_find(const ckpt_st_t *st, const char *name);

/* A string of "__metadata__" ("format" → "pt"), or NULL; borrowed until ckpt_st_close. */
const char *ckpt_st_metadata(const ckpt_st_t *st, const char *key);
/* The raw header text as stored (JSON plus its space padding), NUL-terminated, and its length;
 * borrowed until ckpt_st_close. */
const char *ckpt_st_header(const ckpt_st_t *st, uint64_t *len);

/* Reads tensor `name` (n values, n must equal its numel) into out as float32. F32 is read as
 * is; F16 and BF16 are converted exactly. Other dtypes are an error naming file and tensor. */
int ckpt_st_read_f32(const ckpt_st_t *st, const char *name, float *out, int64_t n, err_t *err);
/* Same for int32: I32 only. */
int ckpt_st_read_i32(const ckpt_st_t *st, const char *name, int32_t *out, int64_t n, err_t *err);
#endif /* RLHF_CKPT_H */
