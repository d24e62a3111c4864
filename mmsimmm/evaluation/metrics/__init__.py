# Copyright (c) mmsimmm contributors. All rights reserved.
from .per_domain_metric import PerDomainMetric

__all__ = ['PerDomainMetric']
