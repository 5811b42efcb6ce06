# bash completion for meshkv(1)                              -*- shell-script -*-
#
# Written by hand and kept beside the code: when a subcommand or option
# changes in cli/, change it here, in _meshkv, meshkv.fish and man/meshkv.1
# (tests/proc_docs.sh checks that they agree with `meshkv SUB --help`).
# Installed as share/bash-completion/completions/meshkv; to try it from a
# checkout: source completions/meshkv.bash

# COMPREPLY=($(compgen ...)) is the completion idiom: candidates have no spaces.
# shellcheck disable=SC2207

_meshkv_subcommands="node get set del expire ttl incr decr sadd srem smembers sismember list status peers clock join forget loss watch diff trace keys quarantine keygen sim cluster top"

# The options of a subcommand, every one of them.
_meshkv_options() {
    local remote="--node --timeout --json --key-file --help"
    case $1 in
        node)
            echo "--config --id --listen --join --mtu --gossip-interval --probe-interval" \
                "--probe-timeout --anti-entropy-interval --loss --data-dir --sync" \
                "--sync-interval --tombstone-grace --reap-after --repair --log-level --log-format --no-history --insecure --key-file" \
                "--identity --allow-peer --metrics --max-clock-offset --clock-offset-ms --help"
            ;;
        set) echo "--batch --value-file --ttl --wait $remote" ;;
        expire) echo "--wait $remote" ;;
        incr | decr) echo "--repeat --wait $remote" ;;
        sadd | srem) echo "--members-file --wait $remote" ;;
        del) echo "--batch --force --wait $remote" ;;
        get) echo "--read --max-staleness $remote" ;;
        list) echo "--read $remote" ;;
        peers) echo "--state $remote" ;;
        status) echo "--check $remote" ;;
        clock | join | forget | keys | ttl | smembers | sismember) echo "$remote" ;;
        loss)
            echo "--node --drop --dup --corrupt --delay --peer --partition --direction --clear" \
                "--timeout --json --key-file --help"
            ;;
        watch) echo "--node --prefix --timeout --json --key-file --help" ;;
        quarantine) echo "--all --limit $remote" ;;
        diff) echo "--json --timeout --key-file --help" ;;
        trace) echo "--node --json --timeout --key-file --help" ;;
        keygen) echo "--cluster --out -o --force --help" ;;
        top) echo "--node --once --view --interval --timeout --key-file --help" ;;
        cluster) echo "--dir --data-dir --key --loss --base-port --wait --help" ;;
        sim)
            echo "--nodes --loss --dup --delay --jitter --partition-at --heal-at --partition" \
                "--writes --seed --duration --quiet --json --help"
            ;;
    esac
}

# Options that may be given more than once (still offered after use).
_meshkv_repeatable() {
    case $1 in
        node) echo "--join --key-file --allow-peer" ;;
        clock | keys | quarantine | ttl) echo "--node" ;;
        loss) echo "--peer" ;;
    esac
}

# Succeeds when option $1 takes a value (every option but these flags does).
_meshkv_takes_value() {
    case $1 in
        --help | --json | --insecure | --no-history | --clear | --repair | --cluster | --force | --all | --key | --check | --once) return 1 ;;
        --data-dir) [[ ${_meshkv_sub:-} != cluster ]] ;; # a flag of `cluster`
    esac
}

_meshkv() {
    local cur prev words cword split=false
    if declare -F _init_completion >/dev/null 2>&1; then
        # -n : keeps HOST:PORT one word; -s splits --opt=value.
        _init_completion -s -n : || return
    else
        # Without bash-completion: readline splits words at "=" and ":".
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        if [[ $cur == "=" ]]; then
            cur=""
            split=true
        elif [[ $prev == "=" ]] && ((cword >= 2)); then
            prev=${COMP_WORDS[COMP_CWORD - 2]}
            split=true
        fi
    fi

    # The subcommand: the first word after `meshkv` that names one.
    local sub="" i w
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        if [[ " $_meshkv_subcommands " == *" $w "* ]]; then
            sub=$w
            break
        fi
    done

    if [[ -z $sub ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
        elif ((cword == 1)); then
            COMPREPLY=($(compgen -W "$_meshkv_subcommands" -- "$cur"))
        fi
        return
    fi

    _meshkv_sub=$sub
    # The value of an option.
    case $prev in
        --dir)
            if declare -F _filedir >/dev/null 2>&1; then
                _filedir -d
            else
                compopt -o filenames 2>/dev/null
                COMPREPLY=($(compgen -d -- "$cur"))
            fi
            return
            ;;
        --config | --batch | --value-file | --out | -o | --key-file | --identity)
            if declare -F _filedir >/dev/null 2>&1; then
                _filedir
            else
                compopt -o filenames 2>/dev/null
                COMPREPLY=($(compgen -f -- "$cur"))
            fi
            return
            ;;
        --data-dir)
            [[ $sub == cluster ]] && return # a flag there
            if declare -F _filedir >/dev/null 2>&1; then
                _filedir -d
            else
                compopt -o filenames 2>/dev/null
                COMPREPLY=($(compgen -d -- "$cur"))
            fi
            return
            ;;
        --sync)
            COMPREPLY=($(compgen -W "always interval" -- "$cur"))
            return
            ;;
        --log-level)
            COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
            return
            ;;
        --view)
            COMPREPLY=($(compgen -W "members lag traffic" -- "$cur"))
            return
            ;;
        --log-format)
            COMPREPLY=($(compgen -W "text json" -- "$cur"))
            return
            ;;
        --direction)
            COMPREPLY=($(compgen -W "out in both" -- "$cur"))
            return
            ;;
        --node | --listen | --join)
            local default=${MESHKV_NODE:-127.0.0.1:7946}
            COMPREPLY=($(compgen -W "$default" -- "$cur"))
            declare -F __ltrim_colon_completions >/dev/null 2>&1 &&
                __ltrim_colon_completions "$cur"
            return
            ;;
    esac
    # Any other value is a number, a name or a prefix: nothing to offer.
    $split && return
    if [[ " $(_meshkv_options "$sub") " == *" $prev "* ]] && _meshkv_takes_value "$prev"; then
        return
    fi

    # meshkv keys [ACTION] [KEY_FILE]: the action first, then a key file.
    if [[ $sub == keys && $cur != -* ]]; then
        local action="" skip=false
        for ((i = i + 1; i < cword; i++)); do
            w=${words[i]}
            if $skip; then
                skip=false
            elif [[ $w == -* ]]; then
                [[ $w != *=* ]] && _meshkv_takes_value "$w" && skip=true
            elif [[ -z $action ]]; then
                action=$w
            else
                return # both positionals are given
            fi
        done
        if [[ -z $action ]]; then
            COMPREPLY=($(compgen -W "list install use remove" -- "$cur"))
        elif [[ $action != list ]]; then
            if declare -F _filedir >/dev/null 2>&1; then
                _filedir
            else
                compopt -o filenames 2>/dev/null
                COMPREPLY=($(compgen -f -- "$cur"))
            fi
        fi
        return
    fi

    # meshkv cluster ACTION [ARG]: the action first.
    if [[ $sub == cluster && $cur != -* ]]; then
        local given=0 skip=false
        for ((i = i + 1; i < cword; i++)); do
            w=${words[i]}
            if $skip; then
                skip=false
            elif [[ $w == -* ]]; then
                [[ $w != *=* ]] && _meshkv_takes_value "$w" && skip=true
            else
                given=$((given + 1))
            fi
        done
        ((given == 0)) && COMPREPLY=($(compgen -W "up status down partition heal kill restart" -- "$cur"))
        return
    fi

    # meshkv quarantine [list|apply|drop] [KEY]: the action first.
    if [[ $sub == quarantine && $cur != -* ]]; then
        local given=0
        for ((i = i + 1; i < cword; i++)); do
            [[ ${words[i]} != -* ]] && given=$((given + 1))
        done
        ((given == 0)) && COMPREPLY=($(compgen -W "list apply drop" -- "$cur"))
        return
    fi

    if [[ $cur == -* ]]; then
        # Every option of the subcommand, less those already given once.
        local opts="" o used repeat
        repeat=" $(_meshkv_repeatable "$sub") "
        for o in $(_meshkv_options "$sub"); do
            used=false
            for ((i = 1; i < cword; i++)); do
                [[ ${words[i]} == "$o" || ${words[i]} == "$o="* ]] && used=true
            done
            if ! $used || [[ $repeat == *" $o "* ]]; then opts+=" $o"; fi
        done
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    fi
} &&
    complete -F _meshkv meshkv

# ex: filetype=sh
