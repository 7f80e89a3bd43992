"""Use cases: each lands or derives one kind of data, unit by unit, from the layers below."""
