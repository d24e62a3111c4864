# Copyright (c) mmsimmm contributors. All rights reserved.
"""Packaging for mmsimmm.

torch and the full mmcv (with compiled ops) cannot come from one
``pip install``: mmcv 2.1.0 is a source distribution whose ops only build
with ``--no-build-isolation`` against an installed torch. ``tools/install.sh``
does the stages in order; the ranges below then match what is installed, so
pip leaves torch and mmcv alone.
"""
import os
import os.path as osp
import shutil
import sys
from typing import List

from setuptools import find_packages, setup

REPO_ROOT = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')

INSTALL_REQUIRES = [
    'torch>=2.0,<2.14',
    'torchvision',
    'mmengine>=0.10,<1.0',
    'mmcv>=2.0.0,<2.2.0',
    'mmpretrain>=1.2,<1.3',
    'mmsegmentation>=1.2.2,<1.3',
    'mmaction2>=1.2,<1.3',
    'numpy<2',
    'opencv-python',
    'decord',
    'ftfy',  # mmseg's tokenizer imports it; the mmseg wheel omits it
    'regex',  # same
    'matplotlib',
    'tensorboard',
    'scipy',
    'Pillow',
]


def read_version() -> str:
    """Read ``__version__`` without importing mmsimmm (it imports torch).

    Returns:
        str: The version string from ``mmsimmm/version.py``.
    """
    namespace: dict = {}
    with open(osp.join(REPO_ROOT, 'mmsimmm', 'version.py')) as f:
        exec(compile(f.read(), 'mmsimmm/version.py', 'exec'), namespace)
    return namespace['__version__']


def read_readme() -> str:
    """Read README.md for the package's long description.

    Returns:
        str: The README's text.
    """
    with open(osp.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


def read_requirements(name: str) -> List[str]:
    """Read requirement lines from ``requirements/<name>.txt``.

    Args:
        name (str): The file's stem, e.g. ``'tests'``.

    Returns:
        list[str]: The requirement specifiers, comments dropped.
    """
    path = osp.join(REPO_ROOT, 'requirements', f'{name}.txt')
    requirements = []
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                requirements.append(line)
    return requirements


def mim_mode(argv: List[str]) -> str:
    """Decide how ``mmsimmm/.mim`` is filled for a setup command line.

    Args:
        argv (list[str]): The setup.py arguments (``sys.argv[1:]``).

    Returns:
        str: ``'symlink'`` for editable installs, ``'copy'`` for wheels and
        sdists, ``''`` for other commands (e.g. ``egg_info``).
    """
    commands = set(argv)
    if commands & {'develop', 'editable_wheel'}:
        return 'copy' if os.name == 'nt' else 'symlink'
    if commands & {'sdist', 'bdist_wheel', 'build', 'build_py'}:
        return 'copy'
    return ''


def add_mim_extension(mode: str, root: str = REPO_ROOT) -> None:
    """Expose ``configs/``, ``tools/`` and ``model-index.yml`` to MIM.

    They appear under ``mmsimmm/.mim/`` (symlinks in editable installs,
    copies in wheels), which is where MMEngine resolves
    ``_base_ = 'mmsimmm::...'`` and where ``mim train mmsimmm`` finds
    ``tools/train.py``.

    Args:
        mode (str): ``'symlink'``, ``'copy'`` or ``''`` (do nothing).
        root (str): The repository root. Defaults to this file's folder.
    """
    if mode not in ('symlink', 'copy', ''):
        raise ValueError(f'unknown mim mode {mode!r}')
    if not mode:
        return
    mim_dir = osp.join(root, 'mmsimmm', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(root, name)
        dst = osp.join(mim_dir, name)
        if not osp.exists(src):
            # building a wheel from the sdist: it ships mmsimmm/.mim itself
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(
                src, dst, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension(mim_mode(sys.argv[1:]))
    setup(
        name='mmsimmm',
        version=read_version(),
        description='Similarity Min-Max zero-shot day-night domain '
        'adaptation for OpenMMLab (mmpretrain, mmsegmentation, mmaction2)',
        long_description=read_readme(),
        long_description_content_type='text/markdown',
        author='mmsimmm contributors',
        keywords='computer vision, domain adaptation, low-light, OpenMMLab',
        license='Apache License 2.0',
        packages=find_packages(exclude=('configs', 'tools', 'tests*')),
        include_package_data=True,
        python_requires='>=3.10',
        install_requires=INSTALL_REQUIRES,
        extras_require={
            'tests': read_requirements('tests'),
            'optional': read_requirements('optional'),
        },
        classifiers=[
            'Development Status :: 3 - Alpha',
            'License :: OSI Approved :: Apache Software License',
            'Operating System :: POSIX :: Linux',
            'Programming Language :: Python :: 3.11',
            'Topic :: Scientific/Engineering :: Artificial Intelligence',
        ],
        zip_safe=False,
    )
