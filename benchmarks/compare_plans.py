"""Two planning runs on the same episodes, compared episode by episode (a paired sign test).

    python benchmarks/compare_plans.py A/results.json[,A2/results.json] B/results.json[,B2/results.json]

Each side is one ``worldjepa plan`` run's results.json, or several (comma list) whose
episodes together make one run, such as two halves planned side by side with
``first_seed=1000`` and ``first_seed=1025``. Episodes are paired by their reset seed, so
both runs faced the same starts and goals. Two success rates over 50 episodes have 95 %
intervals of about ±12 points each, which hides most differences; counting the episodes
that only one run won and testing that split against a fair coin (a two-sided sign
test) does not. Prints the rates, the trapped share where the task reports it, the two
"only this one won" counts and the p-value.
"""

from __future__ import annotations

import argparse
import json
import os
from math import comb


def load(spec: str) -> dict[int, dict]:
    """Episodes by reset seed from a comma list of results.json files."""
    out: dict[int, dict] = {}
    for path in spec.split(","):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such results file (give the results.json a `worldjepa plan` run wrote)")
        with open(path) as f:
            res = json.load(f)
        if "per_episode" not in res:
            raise ValueError(f"{path} has no 'per_episode' list: not a worldjepa plan results.json")
        for ep in res["per_episode"]:
            if ep["seed"] in out:
                raise ValueError(f"episode seed {ep['seed']} appears twice on one side ({path}): the halves overlap")
            out[ep["seed"]] = ep
    return out


def sign_test(only_a: int, only_b: int) -> float:
    """Two-sided p-value of the split only_a : only_b under a fair coin (ties dropped)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="results.json of run A (comma list for halves)")
    ap.add_argument("b", help="results.json of run B (comma list for halves)")
    args = ap.parse_args()
    a, b = load(args.a), load(args.b)
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("the two runs share no episode seed: plan them on the same list (first_seed, episodes)")
    n = len(seeds)
    won_a = sum(bool(a[s]["success"]) for s in seeds)
    won_b = sum(bool(b[s]["success"]) for s in seeds)
    only_a = sum(bool(a[s]["success"]) and not b[s]["success"] for s in seeds)
    only_b = sum(bool(b[s]["success"]) and not a[s]["success"] for s in seeds)
    print(f"{n} episodes in both runs ({len(set(a) ^ set(b))} in only one, left out)")
    for name, runs, won in (("A", a, won_a), ("B", b, won_b)):
        trapped = [runs[s].get("trapped") for s in seeds]
        trap = f", trapped {sum(bool(t) for t in trapped)}" if all(t is not None for t in trapped) else ""
        print(f"  {name}: {won}/{n} = {won / n:.0%} reached the goal{trap}")
    print(f"  only A won {only_a}, only B won {only_b}: sign test p = {sign_test(only_a, only_b):.3f}")


if __name__ == "__main__":
    main()
