"""English is the source language: its catalog takes each message's own text (`make messages`)."""

from pathlib import Path

from babel.messages.pofile import read_po, write_po

CATALOG = Path(__file__).resolve().parent / "en" / "LC_MESSAGES" / "messages.po"


def fill_english(path: Path = CATALOG) -> int:
    """Give every untranslated English entry its source text; how many were filled."""
    with path.open("rb") as file:
        catalog = read_po(file, locale="en")
    filled = 0
    for message in catalog:
        if not message.id or message.string and all(message.string):
            continue
        message.string = message.id
        filled += 1
    with path.open("wb") as file:
        write_po(file, catalog, sort_by_file=True, include_previous=False)
    return filled


if __name__ == "__main__":
    print(f"English catalog: {fill_english()} entries filled from their source text")
