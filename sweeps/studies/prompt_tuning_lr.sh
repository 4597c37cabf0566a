#!/usr/bin/env bash
# Study prompt_tuning_lr: how much does prompt tuning depend on its learning rate and its initialisation?
# all-MiniLM-L6-v2 / SST-2 at the shared budget (sst2_budget.sh), 20 virtual tokens, learning rate
# 1e-4 .. 3e-1 (decades, and half-decades around the usual 3e-2) x initialisation random | vocab
# (embeddings of sampled tokens) | text (the embeddings of a task description), seed 1; then seeds 2 and 3
# at each initialisation's best validation rate (its error bar). Scored on the labelled test split.
#   bash sweeps/studies/prompt_tuning_lr.sh        (from the repository root, offline assets beside it)
. "$(dirname "$0")/common.sh"
STUDY=prompt_tuning_lr
SELECT=val/accuracy DIRECTION=maximize
source "$(dirname "$0")/sst2_budget.sh"
LRS=1e-4,1e-3,1e-2,3e-2,1e-1,3e-1
PROMPT="Classify the sentiment of this movie review sentence as positive or negative."

sweep() {  # sweep <init> <overrides...>: every learning rate at seed 1
  local init=$1
  shift
  train method=prompt_tuning method.lr="$LRS" seed=1 hydra.sweep.dir="$OUT/$STUDY/$init" "${BASE[@]}" "$@"
}
seeds() {  # seeds <init> <overrides...>: seeds 2 and 3 at the init's best validation rate
  local init=$1
  shift
  [[ ${TABLE_ONLY:-0} == 1 ]] && return
  local chosen
  chosen=$(chosen_rate "$init" "$OUT/$STUDY/$init") || return 0
  train method=prompt_tuning method.lr="$chosen" seed=2,3 hydra.sweep.dir="$OUT/$STUDY/$init/seeds" "${BASE[@]}" "$@"
}
TEXT=("method.init_text='$PROMPT'")
RANDOM_INIT=(method.init_text=null method.peft_config.prompt_tuning_init=RANDOM)
VOCAB=(method.init_text=null method.peft_config.prompt_tuning_init=SAMPLE_VOCAB)
sweep text "${TEXT[@]}"
sweep random "${RANDOM_INIT[@]}"
sweep vocab "${VOCAB[@]}"
seeds text "${TEXT[@]}"
seeds random "${RANDOM_INIT[@]}"
seeds vocab "${VOCAB[@]}"
table --metric test/accuracy --also val/accuracy
