/* common/state.h: a named byte section of a training state (AdamW moments, step, RNG, data
 * position). Modules that have state to save (optim, the trainers) describe it with these;
 * ckpt writes and reads them as one train_state.bin (ckpt_state_save / ckpt_state_load).
 * Types only: no functions, no allocation. */
#ifndef RLHF_STATE_H
#define RLHF_STATE_H
#include <stddef.h>

typedef struct {
    const char *name; /* "adam.m", "adam.v", "step", "rng", "data_pos", ... (≤ 63 chars) */
    void *data;       /* caller memory: read from on save, written into on load */
    size_t len;       /* bytes; on load it must equal the stored length */
} state_section_t;
#endif /* RLHF_STATE_H */
