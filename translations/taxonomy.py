"""Babel extractor for data/taxonomy.json (babel.cfg): the seeded treatment and condition names,
categories and descriptions, which pages and emails translate through the catalogs. A name an
admin adds later is shown as written until `make messages` and a translator catch up."""

import json


def extract_taxonomy(fileobj, keywords, comment_tags, options):
    data = json.load(fileobj)
    for condition in data["conditions"]:
        yield 0, None, condition["name"], ["A condition in the treatment taxonomy"]
        yield 0, None, condition["category"], ["A category of conditions"]
    for treatment in data["treatments"]:
        yield 0, None, treatment["name"], ["A treatment in the taxonomy"]
        if treatment.get("description"):
            yield 0, None, treatment["description"], ["A treatment's description for patients"]
