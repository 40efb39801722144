"""``python -m dcgan_ms.report RUN``: write report.html for a run folder, finished or not (the page itself:
``report_page.py``)."""
import sys

from .errors import ArgumentParser, cli
from .report_page import write_report


def build_parser():
    p = ArgumentParser(prog="python -m dcgan_ms.report", description="Write report.html for a run folder, finished "
                       "or not: one self-contained page with its pictures, plots, scores, flags and environment.")
    p.add_argument("run", help="the run's --output_dir")
    p.add_argument("--out", default=None, help="where to write the page (default: RUN/report.html)")
    p.add_argument("--no_score", action="store_true", help="leave out the final Generator's SWD and diversity "
                   "(they take a few seconds and need the run's images)")
    return p


@cli
def main(argv=None):
    args = build_parser().parse_args(argv)
    path, problems = write_report(args.run, args.out, score=not args.no_score)
    for problem in problems:
        print(f"note: the page does not show {problem}", file=sys.stderr)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
