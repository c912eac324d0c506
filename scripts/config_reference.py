"""Write the configuration reference (generated from lamp.config.schema) into docs/configuration.md.

    python scripts/config_reference.py           # rewrite the page's reference block
    python scripts/config_reference.py --check   # exit 1 when the page is out of date
"""
import os
import sys

from lamp.config.reference import replace_reference

PAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "configuration.md")


def main(argv) -> int:
    with open(PAGE, encoding="utf-8") as f:
        page = f.read()
    new = replace_reference(page)
    if "--check" in argv:
        print("up to date" if new == page else f"{PAGE} is out of date: run python scripts/config_reference.py")
        return 0 if new == page else 1
    with open(PAGE, "w", encoding="utf-8") as f:
        f.write(new)
    print(f"wrote the reference into {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
