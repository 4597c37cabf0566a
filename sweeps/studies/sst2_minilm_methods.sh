#!/usr/bin/env bash
# Study sst2_minilm_methods: every method on all-MiniLM-L6-v2 / SST-2 at the shared budget (sst2_budget.sh).
# Each arm's learning rate: a 3-point grid (half-decade steps around the method's usual rate), chosen by
# validation accuracy (GLUE dev, 872 sentences) at seed 1; then seeds 2 and 3 at that rate. Scored on the
# labelled test split (1,821 sentences), which no choice ever sees.
#   bash sweeps/studies/sst2_minilm_methods.sh        (from the repository root, offline assets beside it)
. "$(dirname "$0")/common.sh"
STUDY=sst2_minilm_methods
SELECT=val/accuracy DIRECTION=maximize
source "$(dirname "$0")/sst2_budget.sh"
PROMPT="Classify the sentiment of this movie review sentence as positive or negative."

arms() {
  arm full 2e-5,5e-5,1e-4 method=full
  arm bitfit 3e-4,1e-3,3e-3 method=bitfit
  arm layers 1e-4,3e-4,1e-3 method=selective method.mode=layers method.top_k=1
  arm lora 3e-4,1e-3,3e-3 method=lora
  arm dora 3e-4,1e-3,3e-3 method=dora
  arm adapter_houlsby 3e-4,1e-3,3e-3 method=adapter method.variant=houlsby
  arm adapter_pfeiffer 3e-4,1e-3,3e-3 method=adapter method.variant=pfeiffer
  arm ia3 1e-3,3e-3,1e-2 method=ia3
  arm prompt_tuning 1e-2,3e-2,1e-1 method=prompt_tuning "method.init_text='$PROMPT'"
  arm prefix_tuning 1e-3,3e-3,1e-2 method=prefix_tuning
}
run_arms
table --metric test/accuracy --also val/accuracy
