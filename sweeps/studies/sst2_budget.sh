# The SST-2 budget every sst2_* study shares (sourced): 2,000 training sentences for 2 epochs at batch 32
# (126 optimizer steps), validation on all 872 dev sentences after each epoch, test on all 1,821.
BASE=(
  experiment=sst2_minilm
  data.files.test=stsa.binary.test
  data.train_limit=2000
  data.eval_limit=null
  trainer.max_epochs=2
)
