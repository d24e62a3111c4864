# Copyright (c) mmsimmm contributors. All rights reserved.
"""Find hooks in a config's ``custom_hooks`` list."""
from typing import Any, Optional, Sequence


def hook_type_name(hook_cfg: Any) -> Optional[str]:
    """The class name of a hook config's ``type``, without its scope.

    Args:
        hook_cfg (Any): A hook config (dict with ``type``: a name such as
            ``'mmsimmm.CheckpointMatchHook'`` or a class) or a hook.

    Returns:
        str | None: E.g. ``'CheckpointMatchHook'``; None without a type.
    """
    if not isinstance(hook_cfg, dict):
        return type(hook_cfg).__name__
    hook_type = hook_cfg.get('type')
    if hook_type is None:
        return None
    name = getattr(hook_type, '__name__', str(hook_type))
    return name.split('.')[-1]


def hook_index(hook_cfgs: Optional[Sequence[Any]],
               name: str) -> Optional[int]:
    """The index of the first hook of class ``name`` in ``hook_cfgs``.

    Args:
        hook_cfgs (Sequence, optional): A ``custom_hooks`` list.
        name (str): The hook's class name, e.g. ``'NumericalSafetyHook'``.

    Returns:
        int | None: Its index, or None if there is none.
    """
    return next((index for index, hook_cfg in enumerate(hook_cfgs or [])
                 if hook_type_name(hook_cfg) == name), None)
