# Copyright (c) mmsimmm contributors. All rights reserved.
"""Print the two one-line commands of README.md's "Quick start" section.

Used by ``.ci/run`` (so CI runs exactly what users run) and by the tests (so a
README edit that breaks CI fails ``pytest`` first). The section must hold
exactly two ```` ```bash ```` blocks of one line each: install + demo, then the
test command. Any other shape exits with one message naming the problem.

Usage: ``python .ci/quickstart.py README.md``
"""
import re
import sys


def quickstart_commands(text: str) -> list:
    """Return the Quick start commands of a README text.

    Args:
        text (str): The README's contents.

    Returns:
        list[str]: The two commands, in order.

    Raises:
        ValueError: When the section is missing or does not hold exactly two
            one-line bash blocks.
    """
    section = re.search(r'^## Quick start\n(.*?)(?=^## |\Z)', text,
                        re.M | re.S)
    if section is None:
        raise ValueError('no "## Quick start" section')
    blocks = re.findall(r'^```bash\n(.*?)^```', section.group(1),
                        re.M | re.S)
    if len(blocks) != 2:
        raise ValueError(f'Quick start: expected 2 bash blocks, found '
                         f'{len(blocks)}')
    commands = []
    for block in blocks:
        lines = block.strip().splitlines()
        if len(lines) != 1:
            raise ValueError(f'Quick start: a block must be one line: '
                             f'{block!r}')
        commands.append(lines[0])
    return commands


def main(argv: list) -> int:
    """Print the commands of the README named by ``argv[1]``."""
    path = argv[1] if len(argv) > 1 else 'README.md'
    with open(path, encoding='utf-8') as file:
        text = file.read()
    try:
        commands = quickstart_commands(text)
    except ValueError as error:
        print(f'{path}: {error}', file=sys.stderr)
        return 1
    print('\n'.join(commands))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
