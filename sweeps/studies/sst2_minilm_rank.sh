#!/usr/bin/env bash
# Study sst2_minilm_rank: does LoRA's accuracy plateau with rank? all-MiniLM-L6-v2 on SST-2, LoRA rank
# 1..64 (query and value projections, alpha fixed at 16 as in Hu et al. 2021, so one learning rate serves
# every rank) x seeds 1, 2, 3, next to full fine-tuning at the same budget. Scored on the labelled test
# split (1,821 sentences); validation (GLUE dev, 872) after every epoch shows where accuracy stops rising.
#   bash sweeps/studies/sst2_minilm_rank.sh        (from the repository root, offline assets beside it)
. "$(dirname "$0")/common.sh"
STUDY=sst2_minilm_rank
SELECT=val/accuracy DIRECTION=maximize
source "$(dirname "$0")/sst2_budget.sh"

fixed full method=full method.lr=5e-5
train 'sweep=[seeds,lora_rank]' method.lr=1e-3 \
  hydra.sweep.dir="$OUT/$STUDY/lora" "${BASE[@]}"
CHOSEN+=("$OUT/$STUDY/lora")
table --metric test/accuracy
