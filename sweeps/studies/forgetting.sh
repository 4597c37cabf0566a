#!/usr/bin/env bash
# Study forgetting: does PEFT forget less than full fine-tuning? SmolLM2-135M-Instruct trained on DialogSum
# for 3 epochs over 160 dialogues (60 optimizer steps of batch 8: each dialogue seen three times, where study
# dialogsum_smollm2 sees 320 once), full fine-tuning at twice its usual rate, LoRA and prompt tuning at
# theirs, seeds 1, 2, 3 (full fine-tuning first: its delta says whether the budget changes anything). The
# measure: mean token NLL of 100 held-out SST-2 dev sentences (movie reviews, text the model never trains
# on) before and after (forgetting/before, /after, /delta > 0: worse). No test pass: only the probe matters.
#   bash sweeps/studies/forgetting.sh        (from the repository root, offline assets beside it)
#   FIRST_PASS=1 bash sweeps/studies/forgetting.sh    (seed 1 only)
. "$(dirname "$0")/common.sh"
STUDY=forgetting
A=../shared/assets
BASE=(
  experiment=dialogsum_smollm2
  data.train_limit=160
  data.eval_limit=16
  trainer.max_epochs=3
  test=false
  zero_shot=false
  model.gradient_checkpointing=false
  callbacks=forgetting
  callbacks.forgetting.path=$A/data/sst2/stsa.binary.dev
  callbacks.forgetting.format=sst2
)

fixed full method=full method.lr=1e-4
fixed lora method=lora method.lr=1e-3
fixed prompt_tuning method=prompt_tuning method.lr=3e-2
table --metric forgetting/delta --also forgetting/before,forgetting/after,val/rougeL
