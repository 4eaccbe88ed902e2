#!/usr/bin/python3
"""Fill a BIRD 2 template of deploy/anycast/ with parameters.

    deploy/anycast/render.py TEMPLATE [NAME=VALUE ...] > bird.conf
    deploy/anycast/render.py --list TEMPLATE        # the parameters, their defaults, what they do

A template declares its parameters at the top, one per line:

    #param NAME DEFAULT  what it is        (DEFAULT "-": required; "''": empty)

and uses them as ${NAME}. Lines between "#if NAME" and "#endif" are kept only when NAME is
not empty, between "#if !NAME" and
"#endif" only when it is empty (no nesting). Values come from NAME=VALUE arguments, else from the environment
variable of the same name, else from the default. A required parameter left unset, an
unknown NAME=VALUE, a ${NAME} that is not declared, or a value holding a newline or a quote
is an error (exit 2): a template that renders is a whole configuration, never half of one.
"""
import os
import re
import string
import sys

PARAM = re.compile(r"^#param\s+([A-Z][A-Z0-9_]*)\s+(\S+)\s*(.*)$")


def parse(text):
    params, body = {}, []
    for line in text.splitlines():
        m = PARAM.match(line)
        if m:
            default = m.group(2)
            params[m.group(1)] = (None if default == "-" else
                                  "" if default == "''" else default, m.group(3))
        else:
            body.append(line)
    return params, body


def render(text, given):
    params, body = parse(text)
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise ValueError("unknown parameter(s): %s" % ", ".join(unknown))
    values = {}
    for name, (default, _) in params.items():
        v = given.get(name, os.environ.get(name, default))
        if v is None:
            raise ValueError("%s is required" % name)
        if "\n" in v or '"' in v:
            raise ValueError("%s: a value may not hold a newline or a double quote" % name)
        values[name] = v
    out, keep, cond = [], True, None
    for line in body:
        s = line.strip()
        if s.startswith("#if "):
            if cond is not None:
                raise ValueError("#if inside #if %s" % cond)
            cond = s[4:].strip()
            negate = cond.startswith("!")
            if cond.lstrip("!") not in values:
                raise ValueError("#if %s: not a declared parameter" % cond)
            keep = (values[cond.lstrip("!")] != "") != negate
            continue
        if s == "#endif":
            if cond is None:
                raise ValueError("#endif without #if")
            cond, keep = None, True
            continue
        if keep:
            out.append(line)
    if cond is not None:
        raise ValueError("#if %s is not closed" % cond)
    tmpl = string.Template("\n".join(out) + "\n")
    for m in tmpl.pattern.finditer(tmpl.template):
        name = m.group("named") or m.group("braced")
        if name and name not in values:
            raise ValueError("${%s} is used but not declared" % name)
    return tmpl.substitute(values)


def main(argv):
    if len(argv) >= 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) == 3 and argv[1] == "--list":
        with open(argv[2]) as f:
            params, _ = parse(f.read())
        for name, (default, what) in params.items():
            print("%-16s %-12s %s" % (name, "(required)" if default is None else
                                      repr(default) if default == "" else default, what))
        return 0
    if len(argv) < 2:
        print("usage: render.py TEMPLATE [NAME=VALUE ...] | --list TEMPLATE", file=sys.stderr)
        return 2
    given = {}
    for a in argv[2:]:
        name, eq, value = a.partition("=")
        if not eq:
            print("render.py: %s: expected NAME=VALUE" % a, file=sys.stderr)
            return 2
        given[name] = value
    try:
        with open(argv[1]) as f:
            sys.stdout.write(render(f.read(), given))
    except (OSError, ValueError) as e:
        print("render.py: %s: %s" % (argv[1], e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
