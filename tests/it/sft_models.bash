# tests/it/sft_models.bash: models for the sft integration tests (sourced, not run: make test
# runs tests/it/*.sh only). Needs bash, coreutils and, for gpt2_zero_model, .cache/gpt2.

# gpt2_zero_model DIR C L NH T: a GPT-2 language model with GPT-2's tokenizer, C channels, L
# layers, NH heads, T positions and every parameter 0, written here byte by byte (config.json,
# model.safetensors). All-zero weights make every LayerNorm output 0, so every logit is 0: the
# model predicts the uniform distribution over the 50257 ids, and every loss it gives is
# ln 50257 = 10.825 exactly — a figure that can be checked by hand.
gpt2_zero_model() {
    local dir=$1 C=$2 L=$3 NH=$4 T=$5 V=50257 header="" off=0 l
    mkdir -p "$dir"
    cp .cache/gpt2/vocab.json .cache/gpt2/merges.txt "$dir/"
    add() { # tensor name, shape as JSON, element count
        header+="${header:+,}\"$1\":{\"dtype\":\"F32\",\"shape\":$2,\"data_offsets\":[$off,$((off + 4 * $3))]}"
        off=$((off + 4 * $3))
    }
    add wte.weight "[$V,$C]" $((V * C))
    add wpe.weight "[$T,$C]" $((T * C))
    for ((l = 0; l < L; l++)); do
        add "h.$l.ln_1.weight" "[$C]" "$C"
        add "h.$l.ln_1.bias" "[$C]" "$C"
        add "h.$l.attn.c_attn.weight" "[$C,$((3 * C))]" $((3 * C * C))
        add "h.$l.attn.c_attn.bias" "[$((3 * C))]" $((3 * C))
        add "h.$l.attn.c_proj.weight" "[$C,$C]" $((C * C))
        add "h.$l.attn.c_proj.bias" "[$C]" "$C"
        add "h.$l.ln_2.weight" "[$C]" "$C"
        add "h.$l.ln_2.bias" "[$C]" "$C"
        add "h.$l.mlp.c_fc.weight" "[$C,$((4 * C))]" $((4 * C * C))
        add "h.$l.mlp.c_fc.bias" "[$((4 * C))]" $((4 * C))
        add "h.$l.mlp.c_proj.weight" "[$((4 * C)),$C]" $((4 * C * C))
        add "h.$l.mlp.c_proj.bias" "[$C]" "$C"
    done
    add ln_f.weight "[$C]" "$C"
    add ln_f.bias "[$C]" "$C"
    header="{\"__metadata__\":{\"format\":\"pt\"},$header}"
    local n=${#header} # ASCII: characters are bytes
    # 8-byte little-endian header length, the JSON header, then the (zero) data
    printf "$(printf '\\%03o' $((n & 255)) $((n >> 8 & 255)) $((n >> 16 & 255)) $((n >> 24 & 255)) 0 0 0 0)" \
        > "$dir/model.safetensors"
    printf '%s' "$header" >> "$dir/model.safetensors"
    head -c "$off" /dev/zero >> "$dir/model.safetensors"
    cat > "$dir/config.json" <<JSON
{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": $V,
 "n_positions": $T, "n_embd": $C, "n_layer": $L, "n_head": $NH, "layer_norm_epsilon": 1e-05,
 "activation_function": "gelu_new", "bos_token_id": 50256, "eos_token_id": 50256}
JSON
}

# tiny_trained_model DIR WORK: the embedded world's tiny corpus (in WORK) and a tiny GPT-2
# pretrained on it for a few steps with its own 512-id vocabulary: small, quick, and far from
# uniform, so figures that agree on it agree for a reason. Needs $sft.
tiny_trained_model() {
    local dir=$1 work=$2
    "$sft" world --out "$work" --size tiny --seed 1 > /dev/null
    "$sft" pretrain --corpus "$work/corpus.train.txt" --out "$dir" --config tiny \
        --vocab-size 512 --steps 30 --seed 1 --threads 1 > "$work/pretrain.log" 2>&1 ||
        { cat "$work/pretrain.log"; return 1; }
}
