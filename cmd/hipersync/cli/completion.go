package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// subcommands are the commands' subcommands, for completion.
var subcommands = map[string][]string{
	"tenant":  {"connect", "list", "show", "pause", "resume", "disconnect", "settings", "credentials"},
	"orders":  {"list", "show", "resolve"},
	"events":  {"tail"},
	"dlq":     {"list", "retry"},
	"catalog": {"unlink", "reset"},
}

// runCompletion prints a bash completion script: commands, then
// subcommands, then each (sub)command's flags, read from its own --help.
func runCompletion(_ context.Context, e Env, args []string) error {
	if len(args) != 1 || args[0] != "bash" {
		return usagef("usage: hipersync completion bash   (then: source <(hipersync completion bash))")
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	var cases strings.Builder
	keys := make([]string, 0, len(subcommands))
	for k := range subcommands {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&cases, "    %s) [ $COMP_CWORD -eq 2 ] && words=%q ;;\n", k, strings.Join(subcommands[k], " "))
	}
	fmt.Fprintf(e.Stdout, `# bash completion for hipersync: source <(hipersync completion bash)
_hipersync() {
  local cur=${COMP_WORDS[COMP_CWORD]} words=""
  if [ $COMP_CWORD -eq 1 ]; then
    words=%q
  else
    case ${COMP_WORDS[1]} in
%s    esac
    if [ -z "$words" ] || [[ $cur == -* ]]; then
      local sub=""
      [ $COMP_CWORD -gt 2 ] && [[ ${COMP_WORDS[2]} != -* ]] && sub=${COMP_WORDS[2]}
      words=$(${COMP_WORDS[0]} ${COMP_WORDS[1]} $sub --help 2>/dev/null | grep -oE '^  -[a-z-]+' | sed 's/^  -/--/')
    fi
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _hipersync hipersync
`, strings.Join(append(names, "--help", "--version"), " "), cases.String())
	return nil
}
