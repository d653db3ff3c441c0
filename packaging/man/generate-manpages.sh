#!/bin/sh
# generate-manpages.sh FWGATE OUTDIR VERSION PAGE:SECTION...
#
# Man pages made by help2man from the built executable's own --help and --version, so that they
# never drift from the command line: `fwgate:1` is fwgate(1), `gateway:8` fwgate-gateway(8) from
# `fwgate gateway --help` with the help of its own subcommands (config check, filters show...)
# as sections of their own. Writes OUTDIR/NAME.SECTION.gz (gzip -9n). Fails when the
# executable's version is not VERSION, or when its subcommands and the PAGE list differ (a new
# subcommand needs a page: add it to FWGATE_MAN_PAGES in packaging/CMakeLists.txt).
# SOURCE_DATE_EPOCH, when set, dates the pages (reproducible builds).
set -eu

if [ $# -lt 4 ]; then
    echo "usage: $0 FWGATE OUTDIR VERSION PAGE:SECTION..." >&2
    exit 2
fi
fwgate=$1
outdir=$2
version=$3
shift 3

command -v help2man >/dev/null || {
    echo "generate-manpages: help2man is not installed (apt-get install help2man)" >&2
    exit 1
}
got=$("$fwgate" --version)
if [ "$got" != "fwgate $version" ]; then
    echo "generate-manpages: '$fwgate --version' says '$got', the project is $version" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$outdir"

# The names listed under "Subcommands:" in a CLI11 help text (standard input).
subcommands() {
    awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1; next } on { on = 0 }'
}

# The help text as help2man reads it: the executable's directory dropped from "Usage:", the
# subcommand list as a COMMANDS section. In the help of a subcommand's own subcommand (nested=1),
# "Usage:" and "Options:" become subsections, so that help2man takes neither for the page's own.
tidy() {
    awk -v nested="$1" '
        /^Usage: / { sub(/^Usage: [^ ]*\//, "Usage: ") }
        nested && /^Usage: / { sub(/^Usage: /, ""); print ""; print "Usage:"; print "  " $0; next }
        /^Subcommands:/ { print "*Commands*"; print ""; next }
        nested && /^Options:/ { print "Options of this command:"; next }
        { print }'
}

# The summary help2man puts in NAME: a description without the usage it may end with.
summary() {
    "$fwgate" --help | awk -v sub_="$1" '
        /^Subcommands:/ { on = 1; next }
        on && $1 == sub_ {
            sub(/^  [a-z]+ +/, ""); sub(/: fwgate .*/, ""); print; exit
        }'
}

pages_listed=""
for page in "$@"; do
    [ "${page%%:*}" = fwgate ] || pages_listed="$pages_listed ${page%%:*}"
done
pages_help=$("$fwgate" --help | subcommands | tr '\n' ' ')
for sub in $pages_help; do
    case " $pages_listed " in
    *" $sub "*) ;;
    *)
        echo "generate-manpages: 'fwgate $sub' has no man page: add $sub:SECTION to the list" >&2
        exit 1
        ;;
    esac
done
for sub in $pages_listed; do
    case " $pages_help " in
    *" $sub "*) ;;
    *)
        echo "generate-manpages: 'fwgate --help' has no subcommand $sub" >&2
        exit 1
        ;;
    esac
done

# The SEE ALSO section of page $1: every other page of the list that follows, and fwgate.toml(5).
see_also() {
    self=$1
    shift
    printf '[SEE ALSO]\n'
    for page in "$@"; do
        [ "$page" = "$self" ] && continue
        case $page in
        fwgate:*) ref="\\%fwgate" ;;
        *) ref="\\%fwgate\\-${page%%:*}" ;;
        esac
        printf '.BR %s (%s),\n' "$ref" "${page#*:}"
    done
    printf '.BR \\%%fwgate.toml (5)\n'
}

for page in "$@"; do
    name=${page%%:*}
    section=${page#*:}
    if [ "$name" = fwgate ]; then
        title=fwgate
        "$fwgate" --help | tidy 0 >"$work/$title.help"
        desc=$("$fwgate" --help | head -1 | sed 's/^fwgate: //')
    else
        title=fwgate-$name
        {
            "$fwgate" "$name" --help | tidy 0
            for child in $("$fwgate" "$name" --help | subcommands); do
                printf '\n*fwgate %s %s*\n\n' "$name" "$child"
                "$fwgate" "$name" "$child" --help | tidy 1
            done
        } >"$work/$title.help"
        desc=$(summary "$name")
    fi
    [ -n "$desc" ] || {
        echo "generate-manpages: no description for $title" >&2
        exit 1
    }
    printf '#!/bin/sh\ncat "%s"\n' "$work/$title.help" >"$work/$title"
    chmod +x "$work/$title"
    see_also "$page" "$@" >"$work/$title.include"
    case $name in
    gateway) printf '[FILES]\n/etc/fwgate/gateway.toml, /var/log/fwgate/sessions.log\n' ;;
    passwd) printf '[FILES]\n/etc/fwgate/users\n' ;;
    run | check | detect | agent)
        printf '[FILES]\n/etc/fwgate/client.ini, ~/.config/fwgate/client.ini,\n'
        printf '/etc/fwgate/locallat.txt, /var/cache/fwgate/client.cache\n'
        ;;
    esac >>"$work/$title.include"
    help2man --no-info --section="$section" --name="$desc" --source="fwgate $version" \
        --version-string="$title $version" --include="$work/$title.include" \
        --output="$work/$title.$section" "$work/$title"
    gzip -9n -c "$work/$title.$section" >"$outdir/$title.$section.gz.tmp"
    mv "$outdir/$title.$section.gz.tmp" "$outdir/$title.$section.gz"
done
