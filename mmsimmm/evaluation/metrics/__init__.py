# Copyright (c) mmsimmm contributors. All rights reserved.
from .per_domain_metric import PerDomainMetric
from .retrieval_map import RetrievalMAP

__all__ = ['PerDomainMetric', 'RetrievalMAP']
