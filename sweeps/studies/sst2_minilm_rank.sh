#!/usr/bin/env bash
# Study sst2_minilm_rank: does LoRA's accuracy plateau with rank? all-MiniLM-L6-v2 on SST-2, LoRA rank
# 1..64 (query and value projections, alpha fixed at 16 as in Hu et al. 2021, so one learning rate serves
# every rank) x seeds 1, 2, 3, next to full fine-tuning at the same budget (3 epochs: see below). Scored on
# the labelled test split (1,821 sentences); validation (GLUE dev, 872) after every epoch shows where
# accuracy stops rising.
#   bash sweeps/studies/sst2_minilm_rank.sh        (from the repository root, offline assets beside it)
. "$(dirname "$0")/common.sh"
STUDY=sst2_minilm_rank
SELECT=val/accuracy DIRECTION=maximize
source "$(dirname "$0")/sst2_budget.sh"

# 3 epochs, not the shared 2: the budget check below shows full fine-tuning's validation accuracy still
# rising after 2 epochs and no longer after 3, and this study's question needs full fine-tuning at its plateau.
EPOCHS=trainer.max_epochs=3
fixed full method=full method.lr=5e-5 $EPOCHS
train 'sweep=[seeds,lora_rank]' method.lr=1e-3 hydra.sweep.dir="$OUT/$STUDY/lora" "${BASE[@]}" $EPOCHS

# Budget check: does full fine-tuning's validation accuracy still rise at the end of the budget? The same
# run for 6 epochs, validation after each (its CSV log keeps the curve).
check="$OUT/$STUDY/budget_check"
skip "$check" || python -m research.train "${BASE[@]}" trainer.max_epochs=6 method=full method.lr=5e-5 seed=1 \
  hydra.run.dir="$check" trainer.enable_progress_bar=false
cp "$check"/csv/version_0/metrics.csv "results/$STUDY/budget_check_full_6_epochs.metrics.csv"
cp "$check"/run.json "results/$STUDY/budget_check_full_6_epochs.run.json"
table --metric test/accuracy --also val/accuracy
