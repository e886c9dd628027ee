"""One declaration of each configurable number's rule: the Django model field that stores it.

A field's type, decimal places and validators (MinValueValidator, MaxValueValidator, the range of a
PositiveIntegerField, a DecimalField's digits) are the rule. The admin's forms and `full_clean` apply them by
themselves; the config file's reader (accounts/config.py, which the management API uses too) and the price
catalogue loader (usage/services.py) read a raw value through `number` below, so the same bad value is refused
with the same words wherever it comes from. To change a rule, change the field (and make its migration).
"""

import re
from decimal import Decimal, InvalidOperation

from django.apps import apps
from django.core.exceptions import ValidationError

_KIND = {"DecimalField": Decimal, "FloatField": float}  # every other numeric field holds a whole number
_WHOLE = re.compile(r"-?\d+")
_NUMBER_TYPES = {"DecimalField", "FloatField", "IntegerField", "PositiveIntegerField", "PositiveSmallIntegerField",
                 "SmallIntegerField", "BigIntegerField", "PositiveBigIntegerField"}  # fmt: skip


class FieldProblem(ValueError):
    """A value its field refuses; str() is the message, without the field's name or path."""


def field(label: str, name: str):
    """The model field `name` of "app.Model" (by label: accounts does not import usage)."""
    return apps.get_model(label)._meta.get_field(name)


def numbers(label: str) -> list:
    """The number fields of "app.Model" (decimals and whole numbers), in their declared order."""
    return [f for f in apps.get_model(label)._meta.concrete_fields
            if not f.primary_key and f.get_internal_type() in _NUMBER_TYPES]  # fmt: skip


def number(model_field, value):
    """`value` (a number or a numeric string, as YAML and JSON give them) as the field's Python type, checked
    by the field's own validators. Raises FieldProblem."""
    kind = _KIND.get(model_field.get_internal_type(), int)
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            raise TypeError
        if kind is int:
            if isinstance(value, (float, Decimal)) and value != int(value):
                raise TypeError
            if isinstance(value, str) and not _WHOLE.fullmatch(value.strip()):
                raise TypeError
            result = int(value)
        elif kind is float:
            result = float(value)
        else:
            result = Decimal(str(value).strip())
            if not result.is_finite():
                raise TypeError
    except (TypeError, ValueError, OverflowError, InvalidOperation):
        expected = "a whole number" if kind is int else "a number"
        raise FieldProblem(f"expected {expected}, got {type_name(value)} {value!r}") from None
    try:
        model_field.run_validators(result)
    except ValidationError as e:
        raise FieldProblem(" ".join(e.messages)) from None
    return result


def type_name(value) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def checked(model_field, value):
    """`value` as `model_field` stores it, checked by the field itself (its choices, its validators), as the admin's
    forms check it. Raises FieldProblem. For fields other than numbers (a choice, a JSON mapping)."""
    try:
        return model_field.clean(value, None)
    except ValidationError as e:
        raise FieldProblem(" ".join(e.messages)) from None
