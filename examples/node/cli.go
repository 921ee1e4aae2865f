package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/clusterkit/clusterkit/httpgw/client"
)

// The operator's subcommands: each asks one node (-addr) through the typed
// HTTP client and prints an aligned table for people or JSON (-o json) for
// scripts. Errors name the node asked and what it answered.

// defaultAddr is the node asked when neither -addr nor CLUSTERKIT_ADDR is set.
const defaultAddr = "127.0.0.1:8080"

// command is one subcommand.
type command struct {
	name, args, summary string
	// flags adds the subcommand's own flags (arguments of one invocation).
	flags func(fs *configFlags)
	// nargs is the number of positional arguments: exactly, or at most
	// when optional.
	nargs    int
	optional bool
	run      func(cl *cli, ctx context.Context, args []string) error
}

// commands lists the subcommands in the order `node -h` shows them.
func commands() []command {
	return []command{
		{name: "members", summary: "the members: role, health, zone, load, services", run: (*cli).members},
		{name: "status", summary: "leader, term, commit index, health and failure tolerance", run: (*cli).status},
		{name: "partitions", summary: "the partition table (-node ID: the partitions one node owns)", run: (*cli).partitions,
			flags: func(fs *configFlags) {
				fs.String("node", "", "only the partitions this node owns")
				fs.local["node"] = true
			}},
		{name: "locate", args: "KEY", nargs: 1, summary: "the partition and owners of a key", run: (*cli).locate},
		{name: "watch", summary: "follow the events, resumable (-since SEQ, -kinds, -n)", run: (*cli).watch, flags: watchFlags},
		{name: "transfer-leader", args: "[ID]", nargs: 1, optional: true, summary: "move Raft leadership (to ID, or to any voter)", run: (*cli).transferLeader},
		{name: "remove", args: "ID", nargs: 1, summary: "remove a member for good", run: (*cli).remove},
		{name: "drain", args: "ID", nargs: 1, summary: "hand over everything a member holds; it stays a member", run: drainCmd(true)},
		{name: "undrain", args: "ID", nargs: 1, summary: "give a drained member its share again", run: drainCmd(false)},
		{name: "rebalance", args: "[pause|resume]", nargs: 1, optional: true, summary: "rebalance now (-dry-run: show the plan), or pause/resume rebalancing", run: (*cli).rebalance,
			flags: func(fs *configFlags) {
				fs.Bool("dry-run", false, "print what a rebalance would move, change nothing")
				fs.local["dry-run"] = true
			}},
		{name: "probe", summary: "exit 0 when the node is ready (-live: when it runs); for health checks", run: (*cli).probe,
			flags: func(fs *configFlags) {
				fs.Bool("live", false, "ask /health (alive) instead of /ready")
				fs.local["live"] = true
			}},
	}
}

func watchFlags(fs *configFlags) {
	fs.String("since", "", `start after this event seq; "oldest": with the oldest event the node still holds (default: new events only)`)
	fs.String("kinds", "", "comma-separated event kinds to keep (default: all)")
	fs.Int("n", 0, "stop after this many events (0: until interrupted)")
	for _, n := range []string{"since", "kinds", "n"} {
		fs.local[n] = true
	}
}

func commandByName(name string) (command, bool) {
	if name == "transfer-leadership" { // the route's name, for muscle memory
		name = "transfer-leader"
	}
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// commandList is the subcommand list of `node -h`.
func commandList() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  serve\t\trun a node (the default)\n")
	fmt.Fprintf(tw, "  recover\t\tquorum-loss recovery of a stopped node's data directory\n")
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
	return b.String()
}

// cli is one invocation of a subcommand.
type cli struct {
	fs     *configFlags
	addr   string
	json   bool
	c      *client.Client
	hc     *http.Client
	token  string
	stdout io.Writer
}

// commonFlags are the flags of every subcommand.
type commonFlags struct {
	addr, output, token, tokenFile, ca string
	timeout                            time.Duration
}

func (f *commonFlags) define(fs *configFlags) {
	fs.StringVar(&f.addr, "addr", defaultAddr, "the node to ask: HOST:PORT, or a URL (https://HOST:PORT when the cluster serves TLS)")
	fs.StringVar(&f.output, "output", "table", "table (for people) or json (for scripts)")
	fs.StringVar(&f.output, "o", "table", "")
	fs.alias["o"] = "output"
	fs.StringVar(&f.token, "auth-token", "", "cluster token, for the changes (prefer -auth-token-file: a flag shows in ps)")
	fs.StringVar(&f.tokenFile, "auth-token-file", "", "file holding the token: a node's token file (its first admin token is sent, else its first read token) or one line")
	fs.StringVar(&f.ca, "tls-ca", "", "PEM CA bundle to verify an https node with (default: the system roots)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "bound of each request (watch: of each reconnection)")
}

// cliFlags is the flag set of subcommand c (the common flags and its own).
func cliFlags(c command) (*configFlags, *commonFlags) {
	fs := newConfigFlags("node " + c.name)
	var f commonFlags
	f.define(fs)
	if c.flags != nil {
		c.flags(fs)
	}
	return fs, &f
}

func runCommand(c command, args []string, stdout, stderr io.Writer) error {
	fs, f := cliFlags(c)
	fs.SetOutput(stderr)
	head := fmt.Sprintf("usage: node %s [flags] %s\n\n%s.\n\nflags:\n", c.name, c.args, c.summary)
	pos, done, err := fs.parseCommand(args, stdout, head)
	if done || err != nil {
		return err
	}
	_, _, addrFromEnv := lookupEnv("addr")
	if len(pos) > c.nargs || (!c.optional && len(pos) < c.nargs) {
		return fmt.Errorf("%w: node %s takes %s, got %q", errUsage, c.name, orNothing(c.args), pos)
	}
	if f.output != "table" && f.output != "json" {
		return fmt.Errorf("%w: -o %q: want table or json", errUsage, f.output)
	}
	addrSet := addrFromEnv
	fs.Visit(func(fl *flag.Flag) { addrSet = addrSet || fl.Name == "addr" })
	if c.name == "probe" && !addrSet {
		f.addr = localAddr()
	}
	cl := &cli{fs: fs, addr: f.addr, json: f.output == "json", stdout: stdout}
	if cl.token, err = token(f.token, f.tokenFile); err != nil {
		return err
	}
	if cl.hc, err = cliHTTPClient(f.ca, f.timeout, c.name == "watch"); err != nil {
		return err
	}
	opts := []client.Option{client.WithHTTPClient(cl.hc)}
	if cl.token != "" {
		opts = append(opts, client.WithToken(cl.token))
	}
	if cl.c, err = client.New(f.addr, opts...); err != nil {
		return fmt.Errorf("%w: -addr %q: %v", errUsage, f.addr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return c.run(cl, ctx, pos)
}

func orNothing(s string) string {
	if s == "" {
		return "no argument"
	}
	return s
}

// localAddr is the node of this host's own configuration (CLUSTERKIT_HTTP,
// HTTP_ADDR or HTTP_PORT), on loopback when it listens on every interface:
// what `probe` asks inside a container without -addr.
func localAddr() string {
	_, v, ok := lookupEnv("http")
	if !ok {
		return defaultAddr
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return defaultAddr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// cliHTTPClient bounds every request by timeout (not a stream: its context
// ends it), verifying https nodes with ca when given.
func cliHTTPClient(ca string, timeout time.Duration, stream bool) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = timeout
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-ca %s: no PEM certificate found", ca)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	hc := &http.Client{Transport: tr}
	if !stream {
		hc.Timeout = timeout
	}
	return hc, nil
}

// flagValue is the parsed value of one of the subcommand's own flags (the
// command table defines them; a wrong name or type is a programming error).
func flagValue[T any](cl *cli, name string) T {
	return cl.fs.Lookup(name).Value.(flag.Getter).Get().(T)
}

// fail explains a failed request: the node asked and what it answered (or
// why it could not be reached).
func (cl *cli) fail(what string, err error) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		msg := ce.Message
		if ce.Status == http.StatusUnauthorized {
			msg += " (give the cluster token: -auth-token-file, or CLUSTERKIT_AUTH_TOKEN)"
		}
		return fmt.Errorf("%s: node %s answered %d %s: %s", what, cl.addr, ce.Status, orStatus(ce), msg)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: interrupted", what)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is said already
	}
	return fmt.Errorf("%s: cannot reach node %s: %v", what, cl.addr, err)
}

func orStatus(e *client.Error) string {
	if e.Code != "" {
		return e.Code
	}
	return http.StatusText(e.Status)
}

// printJSON writes v as indented JSON.
func (cl *cli) printJSON(v any) error {
	enc := json.NewEncoder(cl.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows aligned under head.
func (cl *cli) table(head []string, rows [][]string) error {
	tw := tabwriter.NewWriter(cl.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// dash shows an empty value as "-" so that columns stay readable.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinOr(list []string) string { return dash(strings.Join(list, ",")) }

// MemberRow is one member as `members -o json` prints it.
type MemberRow struct {
	client.Node
	// Role is "leader", "voter" or "non-voter".
	Role string `json:"role"`
	// Primaries and Partitions count what the member holds.
	Primaries  int `json:"primaries"`
	Partitions int `json:"partitions"`
}

func (cl *cli) members(ctx context.Context, _ []string) error {
	doc, err := cl.c.Cluster(ctx)
	if err != nil {
		return cl.fail("GET /cluster", err)
	}
	rows := memberRows(doc)
	if cl.json {
		return cl.printJSON(rows)
	}
	var out [][]string
	for _, m := range rows {
		health := "alive"
		if m.Status != "active" {
			health = m.Status
		}
		if m.Drained {
			health += ",drained"
		}
		var svc []string
		for k, v := range m.Services {
			svc = append(svc, k+"="+v)
		}
		sort.Strings(svc)
		out = append(out, []string{m.ID, m.IP, health, m.Role, dash(m.Zone), strconv.Itoa(m.Weight),
			strconv.Itoa(m.Primaries), strconv.Itoa(m.Partitions), joinOr(svc)})
	}
	return cl.table([]string{"ID", "ADDRESS", "HEALTH", "ROLE", "ZONE", "WEIGHT", "PRIMARIES", "PARTITIONS", "SERVICES"}, out)
}

// memberRows are the members of doc, sorted by ID, with role and load.
func memberRows(doc *client.ClusterResponse) []MemberRow {
	var rows []MemberRow
	if doc.Cluster == nil {
		return rows
	}
	load := map[string][2]int{}
	if pm := doc.Cluster.PartitionMap; pm != nil {
		for _, p := range pm.Partitions {
			l := load[p.PrimaryNode]
			l[0]++
			load[p.PrimaryNode] = l
			for _, o := range append([]string{p.PrimaryNode}, p.ReplicaNodes...) {
				l := load[o]
				l[1]++
				load[o] = l
			}
		}
	}
	for _, n := range doc.Cluster.Nodes {
		role := "non-voter"
		switch {
		case n.ID == doc.Leader:
			role = "leader"
		case n.Voter:
			role = "voter"
		}
		rows = append(rows, MemberRow{Node: n, Role: role, Primaries: load[n.ID][0], Partitions: load[n.ID][1]})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	return rows
}

// Status is what `status -o json` prints: the node's Raft and cluster view,
// with the failure tolerance asked of the leader.
type Status struct {
	client.DetailedHealth
	// RebalancePaused is maintenance mode.
	RebalancePaused bool `json:"rebalance_paused"`
	// ToleranceFrom says which node computed FailureTolerance: the leader
	// (its autopilot also counts a lagging voter as failed), or the node
	// asked when the leader did not answer.
	ToleranceFrom string `json:"failure_tolerance_from"`
}

func (cl *cli) status(ctx context.Context, _ []string) error {
	d, err := cl.c.DetailedHealth(ctx)
	if err != nil {
		return cl.fail("GET /health/detailed", err)
	}
	st := Status{DetailedHealth: *d}
	if doc, err := cl.c.Cluster(ctx); err == nil && doc.Cluster != nil {
		st.RebalancePaused = doc.Cluster.RebalancePaused
	}
	// The leader's autopilot knows the voters best: ask it.
	st.ToleranceFrom = d.NodeID
	toleranceNote := ""
	switch {
	case d.IsLeader:
	case d.LeaderAddress != "":
		lc, err := cl.peer(d.LeaderAddress)
		if err == nil {
			var ld *client.DetailedHealth
			if ld, err = lc.DetailedHealth(ctx); err == nil {
				st.FailureTolerance, st.ToleranceFrom = ld.FailureTolerance, ld.NodeID
			}
		}
		if err != nil {
			toleranceNote = fmt.Sprintf(" (by %s: the leader at %s did not answer: %v)", d.NodeID, d.LeaderAddress, err)
		}
	default:
		toleranceNote = " (no leader)"
	}
	if cl.json {
		return cl.printJSON(st)
	}
	tol := fmt.Sprintf("%d voter and %d node failures (of %d voters, %d members)%s",
		st.FailureTolerance.Voters, st.FailureTolerance.Nodes, st.Voters, st.NodeCount, toleranceNote)
	health := d.ClusterStatus
	if len(d.Problems) > 0 {
		health += ": " + strings.Join(d.Problems, "; ")
	}
	rebalancing := "on"
	if st.RebalancePaused {
		rebalancing = "paused (maintenance mode)"
	}
	kv := [][2]string{
		{"Node", fmt.Sprintf("%s (%s, %s)", d.NodeID, cl.addr, d.Membership)},
		{"Cluster ID", d.ClusterID},
		{"Leader", fmt.Sprintf("%s (%s)", dash(d.Leader), dash(d.LeaderAddress))},
		{"Raft state", d.RaftState},
		{"Term", strconv.FormatUint(d.Term, 10)},
		{"Commit index", strconv.FormatUint(d.CommitIndex, 10)},
		{"Applied index", strconv.FormatUint(d.AppliedIndex, 10)},
		{"Health", health},
		{"Failure tolerance", tol},
		{"Voters", joinOr(d.VoterIDs)},
		{"Non-voters", joinOr(d.NonVoterIDs)},
		{"Unhealthy", joinOr(d.UnhealthyNodeIDs)},
		{"Under-replicated", fmt.Sprintf("%d of %d partitions", d.UnderReplicatedPartitions, d.PartitionCount)},
		{"Rebalancing", rebalancing},
	}
	tw := tabwriter.NewWriter(cl.stdout, 0, 0, 2, ' ', 0)
	for _, r := range kv {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// peer is a client of another node at addr, with this invocation's
// scheme, token and HTTP client.
func (cl *cli) peer(addr string) (*client.Client, error) {
	scheme := "http://"
	if strings.HasPrefix(cl.c.BaseURL(), "https://") {
		scheme = "https://"
	}
	opts := []client.Option{client.WithHTTPClient(cl.hc)}
	if cl.token != "" {
		opts = append(opts, client.WithToken(cl.token))
	}
	return client.New(scheme+addr, opts...)
}

func (cl *cli) partitions(ctx context.Context, _ []string) error {
	node := flagValue[string](cl, "node")
	var all []client.Partition
	for off := 0; ; {
		page, err := cl.c.Partitions(ctx, client.Page{Offset: off, Limit: 1000})
		if err != nil {
			return cl.fail("GET /partitions", err)
		}
		all = append(all, page.Partitions...)
		off += len(page.Partitions)
		if len(page.Partitions) == 0 || off >= page.Total {
			break
		}
	}
	if node != "" {
		all = slices.DeleteFunc(all, func(p client.Partition) bool {
			return !slices.ContainsFunc(p.Owners, func(o client.PartitionOwner) bool { return o.ID == node })
		})
	}
	if cl.json {
		if all == nil {
			all = []client.Partition{}
		}
		return cl.printJSON(all)
	}
	var rows [][]string
	syncing := false
	for _, p := range all {
		var owners []string
		for _, o := range p.Owners {
			name := o.ID
			if o.State == "syncing" {
				name += "*"
				syncing = true
			}
			owners = append(owners, name)
		}
		primary, replicas := "-", []string(nil)
		if len(owners) > 0 && p.PrimaryNode != "" {
			primary, replicas = owners[0], owners[1:]
		}
		rows = append(rows, []string{strings.TrimPrefix(p.ID, "partition-"), primary, joinOr(replicas), strconv.FormatUint(p.Epoch, 10)})
	}
	if err := cl.table([]string{"PARTITION", "PRIMARY", "REPLICAS", "EPOCH"}, rows); err != nil {
		return err
	}
	if syncing {
		fmt.Fprintln(cl.stdout, "* syncing: assigned, still loading the data")
	}
	return nil
}

func (cl *cli) locate(ctx context.Context, args []string) error {
	d, err := cl.c.Locate(ctx, args[0])
	if err != nil {
		return cl.fail("GET /locate", err)
	}
	if cl.json {
		return cl.printJSON(d)
	}
	primary := "-"
	if d.Primary != nil {
		primary = d.Primary.ID + " (" + d.Primary.IP + ")"
	}
	var reps []string
	for _, r := range d.Replicas {
		reps = append(reps, r.ID+" ("+r.IP+")")
	}
	tw := tabwriter.NewWriter(cl.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Key:\t%s\nPartition:\t%d\nPrimary:\t%s\nReplicas:\t%s\nEpoch:\t%d\n", d.Key, d.Number, primary, dash(strings.Join(reps, ", ")), d.Epoch)
	for _, e := range d.Explain {
		fmt.Fprintf(tw, "Note:\t%s\n", e)
	}
	return tw.Flush()
}

func (cl *cli) watch(ctx context.Context, _ []string) error {
	opts := client.WatchOptions{Since: flagValue[string](cl, "since"), MaxRetries: -1}
	if k := flagValue[string](cl, "kinds"); k != "" {
		for _, s := range strings.Split(k, ",") {
			if s = strings.TrimSpace(s); s != "" {
				opts.Kinds = append(opts.Kinds, s)
			}
		}
	}
	limit := flagValue[int](cl, "n")
	seen := 0
	for ev, err := range cl.c.Watch(ctx, opts) {
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: a normal end of watching
			}
			return cl.fail("GET /events", err)
		}
		if cl.json {
			data, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			fmt.Fprintf(cl.stdout, "%s\n", data)
		} else {
			fmt.Fprintf(cl.stdout, "%-10s %s  %-22s %s\n", ev.Seq, ev.Time.Local().Format("15:04:05.000"), ev.Kind, summary(ev))
		}
		if seen++; limit > 0 && seen >= limit {
			return nil
		}
	}
	return nil
}

// summary is one event in a few words.
func summary(ev client.Event) string {
	switch {
	case ev.NodeJoin != nil && ev.NodeJoin.Node != nil:
		return "node " + ev.NodeJoin.Node.ID + " joined"
	case ev.NodeRejoin != nil && ev.NodeRejoin.Node != nil:
		return "node " + ev.NodeRejoin.Node.ID + " rejoined"
	case ev.NodeLeave != nil && ev.NodeLeave.Node != nil:
		return "node " + ev.NodeLeave.Node.ID + " left: " + ev.NodeLeave.Reason
	case ev.PartitionChange != nil:
		p := ev.PartitionChange
		to := ""
		if p.CopyToNode != nil {
			to = p.CopyToNode.ID
		}
		return fmt.Sprintf("partition %d to %s as %s (%s)", p.Partition, to, p.Role, p.ChangeReason)
	case ev.RebalanceStart != nil:
		return "rebalance started: " + ev.RebalanceStart.Trigger
	case ev.RebalanceComplete != nil:
		return fmt.Sprintf("rebalance done: %d partitions moved", ev.RebalanceComplete.PartitionsMoved)
	case ev.ClusterHealthChange != nil:
		h := ev.ClusterHealthChange
		return h.PreviousStatus + " -> " + h.Status
	case ev.CustomDataChange != nil:
		if ev.CustomDataChange.Deleted {
			return "deleted " + ev.CustomDataChange.Key
		}
		return "set " + ev.CustomDataChange.Key
	}
	return ""
}

func (cl *cli) transferLeader(ctx context.Context, args []string) error {
	target := ""
	if len(args) > 0 {
		target = args[0]
	}
	r, err := cl.c.TransferLeadership(ctx, target)
	if err != nil {
		return cl.fail("POST /leadership/transfer", err)
	}
	if cl.json {
		return cl.printJSON(r)
	}
	fmt.Fprintf(cl.stdout, "leadership moved to %s\n", r.Leader)
	return nil
}

func (cl *cli) remove(ctx context.Context, args []string) error {
	r, err := cl.c.RemoveNode(ctx, args[0])
	if err != nil {
		return cl.fail("DELETE /nodes/"+args[0], err)
	}
	return cl.change(r, "removed "+args[0])
}

func drainCmd(on bool) func(*cli, context.Context, []string) error {
	return func(cl *cli, ctx context.Context, args []string) error {
		call, verb := cl.c.Drain, "drain"
		if !on {
			call, verb = cl.c.Undrain, "undrain"
		}
		r, err := call(ctx, args[0])
		if err != nil {
			return cl.fail("POST /nodes/"+args[0]+"/"+verb, err)
		}
		return cl.change(r, args[0]+": "+r.Message)
	}
}

// change prints the answer of a change.
func (cl *cli) change(r *client.ChangeResult, text string) error {
	if cl.json {
		return cl.printJSON(r)
	}
	fmt.Fprintf(cl.stdout, "%s (state version %d)\n", text, r.Version)
	return nil
}

func (cl *cli) rebalance(ctx context.Context, args []string) error {
	dry := flagValue[bool](cl, "dry-run")
	if len(args) == 1 {
		if dry {
			return fmt.Errorf("%w: -dry-run goes with a rebalance, not with %s", errUsage, args[0])
		}
		switch args[0] {
		case "pause":
			r, err := cl.c.PauseRebalancing(ctx)
			if err != nil {
				return cl.fail("POST /rebalance/pause", err)
			}
			return cl.change(r, r.Message)
		case "resume":
			r, err := cl.c.ResumeRebalancing(ctx)
			if err != nil {
				return cl.fail("POST /rebalance/resume", err)
			}
			return cl.change(r, r.Message)
		}
		return fmt.Errorf("%w: node rebalance takes pause, resume or nothing, not %q", errUsage, args[0])
	}
	if !dry {
		r, err := cl.c.Rebalance(ctx)
		if err != nil {
			return cl.fail("POST /rebalance", err)
		}
		return cl.change(r, "rebalanced")
	}
	plan, err := cl.c.PlanRebalance(ctx)
	if err != nil {
		return cl.fail("POST /rebalance?dry_run=true", err)
	}
	if cl.json {
		return cl.printJSON(plan)
	}
	var rows [][]string
	for _, p := range plan.Partitions {
		rows = append(rows, []string{strings.TrimPrefix(p.PartitionID, "partition-"), joinOr(p.Current), joinOr(p.Target), joinOr(p.Add), joinOr(p.Release)})
	}
	if len(rows) > 0 {
		if err := cl.table([]string{"PARTITION", "NOW", "PLANNED", "LOADS", "RELEASES"}, rows); err != nil {
			return err
		}
	}
	fmt.Fprintf(cl.stdout, "%d copies to make, %d primaries to change, %d copies of a hand-off still pending\n", plan.Moves, plan.PrimaryChanges, plan.Pending)
	return nil
}

func (cl *cli) probe(ctx context.Context, _ []string) error {
	if flagValue[bool](cl, "live") {
		h, err := cl.c.Health(ctx)
		if err != nil {
			return exitError{1, cl.fail("GET /health", err).Error()}
		}
		if cl.json {
			return cl.printJSON(h)
		}
		fmt.Fprintf(cl.stdout, "alive: %s (%s)\n", h.NodeID, h.Status)
		return nil
	}
	r, err := cl.c.Ready(ctx)
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status == http.StatusServiceUnavailable && r != nil && r.NodeID != "" {
		err = nil // a node that answers "not ready" with its reasons
	}
	if err != nil {
		return exitError{1, cl.fail("GET /ready", err).Error()}
	}
	if cl.json {
		if err := cl.printJSON(r); err != nil {
			return err
		}
	} else if r.Ready {
		fmt.Fprintf(cl.stdout, "ready: %s (cluster %s, leader %s)\n", r.NodeID, r.ClusterStatus, dash(r.Leader))
	}
	if !r.Ready {
		return exitError{1, fmt.Sprintf("not ready: node %s at %s: %s", r.NodeID, cl.addr, strings.Join(r.Reasons, "; "))}
	}
	return nil
}
