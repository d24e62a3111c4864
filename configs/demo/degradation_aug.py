# Simulated-degradation baseline: the day-only checkpoint fine-tuned (the
# recipe and iterations of SimMinMax's adapt stage, ./_base_finetune.py)
# with, for each image with probability 0.5, the physically motivated
# low-light simulator (LowLightDegradation, default ranges: gamma 2-3.5,
# exposure 0.01-0.3, shot/read noise, 12-16 bit ADC, warm colour cast).
# test_night is made by the SAME simulator family (narrower ranges, fixed
# seed), so this baseline knows the benchmark's night model: a reference
# for what a correct hand-made prior buys, not a zero-shot method.
_base_ = ['./_base_finetune.py']

degradation = dict(
    type='mmsimmm.LowLightDegradation', prob=0.5, channel_order='bgr')
train_pipeline = (
    _base_.load_pipeline + [degradation] + _base_.augment_pipeline)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
