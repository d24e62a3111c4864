# Hand-crafted darkening baseline: the day-only checkpoint fine-tuned (the
# recipe and iterations of SimMinMax's adapt stage, ./_base_finetune.py)
# with, for each image with probability 0.5, a random gamma curve
# (out = in ** g, g in {1.5, 2, 2.5, 3}) then a random brightness factor in
# [0.1, 1] (mmseg AdjustGamma, mmpretrain ColorJitter): the classic "make
# it darker" augmentation. No noise, no colour cast, nothing learned.
_base_ = ['./_base_finetune.py']

gamma_darkening = dict(
    type='RandomApply',
    prob=0.5,
    transforms=[
        # mmseg's AdjustGamma(gamma) maps x -> x ** (1 / gamma)
        dict(
            type='RandomChoice',
            transforms=[[dict(type='mmseg.AdjustGamma', gamma=1 / g)]
                        for g in (1.5, 2.0, 2.5, 3.0)]),
        dict(type='ColorJitter', brightness=(0.1, 1.0)),
    ])
train_pipeline = (
    _base_.load_pipeline + [gamma_darkening] + _base_.augment_pipeline)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
