"""`steppe generate types`: TypeScript declarations (types.d.ts) and Python stubs (steppe_types.py) from
the steps' schemas. `model` gathers what the steps declare; `ts` and `py` write it out."""

from .files import regenerate_if_present, write_types
from .model import ProjectTypes, project_types
from .py import python_stubs
from .ts import typescript_declarations

__all__ = ["ProjectTypes", "project_types", "python_stubs", "regenerate_if_present", "typescript_declarations",
           "write_types"]
