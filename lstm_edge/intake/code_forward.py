"""A state_dict's forward from the user's --code file: the one nn.Module class defined there that builds with no
arguments and takes the file's weights exactly (load_state_dict strict). With it, export runs the user's own forward
and finds the head mode by trying, instead of guessing it from the weights."""

from __future__ import annotations

import inspect
import types

from torch import Tensor, nn

from lstm_edge.errors import LstmEdgeError, first_line


def module_from_code(user: types.ModuleType, state_dicts: list[dict[str, Tensor]]) -> nn.Module:
    """The module of `user` (an imported --code file) whose class, built with no arguments, loads one of
    `state_dicts` strictly (the file's keys as saved, then with wrapper prefixes stripped), in eval mode.

    Raises LstmEdgeError when no class defined in the file fits, naming the classes tried and why."""
    classes = [
        c
        for _, c in inspect.getmembers(user, inspect.isclass)
        if issubclass(c, nn.Module) and c.__module__ == user.__name__
    ]
    tried = []
    for cls in classes:
        try:
            module = cls()
        except Exception as e:  # the user's constructor may raise anything
            tried.append(f"{cls.__name__}() failed ({type(e).__name__}: {first_line(e, 80)})")
            continue
        for sd in state_dicts:
            try:
                module.load_state_dict(sd, strict=True)
            except (RuntimeError, KeyError, ValueError) as e:
                why = f"{cls.__name__}'s weights do not match the file's ({first_line(e, 80)})"
                continue
            return module.eval()
        tried.append(why)
    shown = "; ".join(tried) if tried else f"it defines no nn.Module class ({user.__file__})"
    raise LstmEdgeError(
        f"--code {user.__file__}: no class there takes this state_dict: {shown}",
        "define the model's class with default constructor arguments in the --code file, or pass --head",
    )
