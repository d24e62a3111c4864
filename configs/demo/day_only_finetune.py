# Extra-training control: the day-only checkpoint fine-tuned on day images
# only, with exactly the recipe and iterations of SimMinMax's adapt stage
# (./_base_finetune.py). Whatever SimMinMax gains over THIS model is not
# explained by training longer.
_base_ = ['./_base_finetune.py']
