package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/clusterkit/clusterkit/internal/auth"
)

// Configuration: every flag of `node serve`, `node recover` and the common
// flags of the operator subcommands can be set from the environment, as
// CLUSTERKIT_<FLAG> (upper case, dashes as underscores): -health-interval is
// CLUSTERKIT_HEALTH_INTERVAL. The reference deployment's names (NODE_ID,
// JOIN_ADDR, ...) are still read after it, so existing compose files work.
// A command-line flag wins over both. An unreadable value is an error that
// names the variable: a typo in a manifest must not start a node with a
// default it did not ask for.

// envPrefix heads every environment variable of the node program.
const envPrefix = "CLUSTERKIT_"

// legacyEnv maps flags to the reference deployment's variable names.
var legacyEnv = map[string]string{
	"id":                 "NODE_ID",
	"http":               "HTTP_ADDR",
	"name":               "NODE_NAME",
	"advertise":          "ADVERTISE_ADDR",
	"join":               "JOIN_ADDR",
	"cluster-name":       "CLUSTER_NAME",
	"auto-rejoin":        "AUTO_REJOIN",
	"data-dir":           "DATA_DIR",
	"services":           "SERVICES",
	"auth-token":         "AUTH_TOKEN",
	"tls-cert":           "TLS_CERT_FILE",
	"tls-key":            "TLS_KEY_FILE",
	"tls-ca":             "TLS_CA_FILE",
	"log-level":          "LOG_LEVEL",
	"zone":               "ZONE",
	"weight":             "WEIGHT",
	"replica-delay":      "REPLICA_DELAY",
	"handoff-timeout":    "HANDOFF_TIMEOUT",
	"max-moves-per-node": "MAX_MOVES_PER_NODE",
}

// httpPortEnv is the reference's other way to say -http: ":<port>".
const httpPortEnv = "HTTP_PORT"

// envName is the environment variable of flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// envNames lists the variables read for flag name, in precedence order.
func envNames(name string) []string {
	out := []string{envName(name)}
	if l, ok := legacyEnv[name]; ok {
		out = append(out, l)
	}
	if name == "http" {
		out = append(out, httpPortEnv)
	}
	return out
}

// lookupEnv returns the first variable set for flag name, and its value as
// the flag reads it.
func lookupEnv(name string) (variable, value string, ok bool) {
	for _, v := range envNames(name) {
		if s, set := os.LookupEnv(v); set && s != "" {
			if v == httpPortEnv {
				s = ":" + s
			}
			return v, s, true
		}
	}
	return "", "", false
}

// configFlags is a flag set whose flags (all but those in local) are read
// from the environment too.
type configFlags struct {
	*flag.FlagSet
	// local flags are arguments of one invocation (-dry-run, -since), not
	// configuration: no variable.
	local map[string]bool
	// alias maps a short flag to the long one it shares a value with.
	alias map[string]string
}

func newConfigFlags(name string) *configFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return &configFlags{FlagSet: fs, local: map[string]bool{}, alias: map[string]string{}}
}

// hasEnv says whether flag name is read from the environment.
func (c *configFlags) hasEnv(name string) bool {
	return !c.local[name] && c.alias[name] == ""
}

// wantsHelp says whether args ask for the usage (-h, -help, --help): it is
// printed on stdout then, with exit status 0, so that `node -h | less` works.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "--h":
			return true
		case "--":
			return false
		}
	}
	return false
}

// parseCommand is parse for a (sub)command: the usage, headed by head, goes
// to stdout on -h (done is then true: nothing else to do); a command line
// that cannot be parsed is errUsage.
func (c *configFlags) parseCommand(args []string, stdout io.Writer, head string) (pos []string, done bool, err error) {
	c.Usage = func() { c.printUsage(c.Output(), head) }
	if wantsHelp(args) {
		c.SetOutput(stdout)
		c.Usage()
		return nil, true, nil
	}
	pos, err = c.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", errUsage, err)
	}
	return pos, false, nil
}

// parse applies the environment, then args (flags and positional arguments
// in any order: "locate KEY -o json" works). It returns the positional
// arguments; -h is flag.ErrHelp.
func (c *configFlags) parse(args []string) ([]string, error) {
	var errs []error
	c.VisitAll(func(f *flag.Flag) {
		if !c.hasEnv(f.Name) {
			return
		}
		if v, s, ok := lookupEnv(f.Name); ok {
			if err := c.Set(f.Name, s); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q (for -%s): %v", v, s, f.Name, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var pos []string
	for {
		if err := c.Parse(args); err != nil {
			return nil, err
		}
		args = c.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// printUsage writes head, then every flag with its variables and default.
func (c *configFlags) printUsage(w io.Writer, head string) {
	fmt.Fprint(w, head)
	for _, r := range c.rows() {
		fmt.Fprintf(w, "  -%s\n    \t%s", strings.TrimSpace(r.name+" "+r.kind), r.usage)
		if r.env != "" {
			fmt.Fprintf(w, " (env %s)", r.env)
		}
		if r.def != "" {
			fmt.Fprintf(w, " (default %s)", r.def)
		}
		fmt.Fprintln(w)
	}
}

// flagRow is one flag as the usage and the documentation table show it.
type flagRow struct {
	name, kind, usage, env, def string
}

func (c *configFlags) rows() []flagRow {
	var rows []flagRow
	c.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		r := flagRow{name: f.Name, kind: kind, usage: usage}
		if long := c.alias[f.Name]; long != "" {
			r.usage = "short for -" + long
		} else if !isZeroDefault(f) {
			r.def = f.DefValue
			if kind == "string" {
				r.def = fmt.Sprintf("%q", f.DefValue)
			}
		}
		if c.hasEnv(f.Name) {
			r.env = strings.Join(envNames(f.Name), ", ")
		}
		rows = append(rows, r)
	})
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	return rows
}

// isZeroDefault: a zero default is not printed (as the flag package does).
func isZeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s":
		return true
	}
	return false
}

// markdownTable is the flags of c as a Markdown table (docs/operations.md).
func (c *configFlags) markdownTable() string {
	var b strings.Builder
	b.WriteString("| Flag | Environment | Default | Meaning |\n|---|---|---|---|\n")
	for _, r := range c.rows() {
		env := "—"
		if r.env != "" {
			env = "`" + strings.ReplaceAll(r.env, ", ", "`, `") + "`"
		}
		def := ""
		if r.def != "" {
			def = "`" + r.def + "`"
		}
		usage := strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(r.usage)
		fmt.Fprintf(&b, "| `-%s` | %s | %s | %s |\n", r.name, env, def, usage)
	}
	return b.String()
}

// readTokenFile reads a token file as a client: the first admin token, else
// the first read token (the format of Options.AuthTokenFile; a one-line file
// is one admin token). A file without a token is an error (a mount that did
// not happen must not go unnoticed).
func readTokenFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("-auth-token-file: %w", err)
	}
	tok, err := auth.ClientToken(data)
	if err != nil {
		return "", fmt.Errorf("-auth-token-file %s: %w", path, err)
	}
	return tok, nil
}

// token is the token of -auth-token or -auth-token-file (not both).
func token(flagToken, file string) (string, error) {
	if file == "" {
		return flagToken, nil
	}
	if flagToken != "" {
		return "", errors.New("-auth-token and -auth-token-file are both set: give one")
	}
	return readTokenFile(file)
}
