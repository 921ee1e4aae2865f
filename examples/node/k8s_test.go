package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/clusterkit/clusterkit"
	"github.com/clusterkit/clusterkit/internal/auth"
)

// The Kubernetes example (examples/k8s/clusterkit.yaml) checked without a
// cluster: its objects fit together (labels, ports, the Secret, the volume),
// and every variable of the node's container is one this program reads and
// accepts, so the manifest cannot drift from the flags. The container's
// environment is run through serve's own flag parsing for each pod, which
// also shows that clusterkit-0 (and only it) bootstraps.

const k8sManifest = "../k8s/clusterkit.yaml"

// Just what the test reads of each kind; other fields are ignored.
type (
	k8sMeta struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	}
	k8sObject struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   k8sMeta           `yaml:"metadata"`
		Spec       yaml.Node         `yaml:"spec"`
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
	}
	k8sSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	k8sServiceSpec struct {
		ClusterIP                string            `yaml:"clusterIP"`
		PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]string `yaml:"selector"`
		Ports                    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	k8sPDBSpec struct {
		MaxUnavailable any         `yaml:"maxUnavailable"`
		MinAvailable   any         `yaml:"minAvailable"`
		Selector       k8sSelector `yaml:"selector"`
	}
	k8sStatefulSetSpec struct {
		ServiceName         string      `yaml:"serviceName"`
		Replicas            *int        `yaml:"replicas"`
		PodManagementPolicy string      `yaml:"podManagementPolicy"`
		Selector            k8sSelector `yaml:"selector"`
		Template            struct {
			Metadata k8sMeta    `yaml:"metadata"`
			Spec     k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata k8sMeta `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	}
	k8sVolume struct {
		Name   string `yaml:"name"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
			Items      []struct {
				Key  string `yaml:"key"`
				Path string `yaml:"path"`
			} `yaml:"items"`
		} `yaml:"secret"`
	}
	k8sVolumeMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	}
	k8sSecurityContext struct {
		RunAsNonRoot           *bool  `yaml:"runAsNonRoot"`
		RunAsUser              *int64 `yaml:"runAsUser"`
		ReadOnlyRootFilesystem *bool  `yaml:"readOnlyRootFilesystem"`
	}
	k8sPodSpec struct {
		TerminationGracePeriodSeconds *int64             `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               k8sSecurityContext `yaml:"securityContext"`
		Containers                    []k8sContainer     `yaml:"containers"`
		InitContainers                []k8sContainer     `yaml:"initContainers"`
		Volumes                       []k8sVolume        `yaml:"volumes"`
	}
	k8sContainer struct {
		Name            string `yaml:"name"`
		Image           string `yaml:"image"`
		ImagePullPolicy string `yaml:"imagePullPolicy"`
		Ports           []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		Env             []k8sEnvVar        `yaml:"env"`
		EnvFrom         []yaml.Node        `yaml:"envFrom"`
		ReadinessProbe  *k8sProbe          `yaml:"readinessProbe"`
		LivenessProbe   *k8sProbe          `yaml:"livenessProbe"`
		StartupProbe    *k8sProbe          `yaml:"startupProbe"`
		SecurityContext k8sSecurityContext `yaml:"securityContext"`
		VolumeMounts    []k8sVolumeMount   `yaml:"volumeMounts"`
	}
	k8sEnvVar struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
			SecretKeyRef    *yaml.Node `yaml:"secretKeyRef"`
			ConfigMapKeyRef *yaml.Node `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	}
	k8sProbe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
		Exec             *yaml.Node `yaml:"exec"`
		FailureThreshold int        `yaml:"failureThreshold"`
		PeriodSeconds    int        `yaml:"periodSeconds"`
	}
)

// k8sObjects decodes every document of the manifest.
func k8sObjects(t *testing.T) []k8sObject {
	t.Helper()
	data, err := os.ReadFile(k8sManifest)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []k8sObject
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", k8sManifest, len(out)+1, err)
		}
		if o.Kind == "" {
			continue // an empty document
		}
		out = append(out, o)
	}
}

func decodeSpec[T any](t *testing.T, o k8sObject) T {
	t.Helper()
	var spec T
	if err := o.Spec.Decode(&spec); err != nil {
		t.Fatalf("%s %s: spec: %v", o.Kind, o.Metadata.Name, err)
	}
	return spec
}

// selects reports whether a non-empty selector matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// readEnvNames are the variables the node program reads: those of every
// flag of serve, and the common flags of the CLI subcommands (CLUSTERKIT_ADDR
// lets `kubectl exec POD -- /node members` find the pod's node).
func readEnvNames() map[string]string {
	names := map[string]string{}
	add := func(fs *configFlags, what string) {
		fs.VisitAll(func(f *flag.Flag) {
			if fs.hasEnv(f.Name) {
				for _, n := range envNames(f.Name) {
					if _, ok := names[n]; !ok {
						names[n] = what + " -" + f.Name
					}
				}
			}
		})
	}
	fs, _, _ := serveFlags()
	add(fs, "serve")
	for _, c := range commands() {
		fs, _ := cliFlags(c)
		add(fs, "node "+c.name)
	}
	return names
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// expandEnv is the container's environment of pod ordinal as the kubelet
// builds it: downward API values, then $(VAR) expanded with the variables
// defined before (later ones, and unknown ones, stay as they are).
func expandEnv(t *testing.T, env []k8sEnvVar, podName string, ordinal int) map[string]string {
	t.Helper()
	vals := map[string]string{}
	for _, e := range env {
		switch {
		case e.Value != nil:
			vals[e.Name] = envRef.ReplaceAllStringFunc(*e.Value, func(ref string) string {
				if v, ok := vals[ref[2:len(ref)-1]]; ok {
					return v
				}
				return ref
			})
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			switch p := e.ValueFrom.FieldRef.FieldPath; p {
			case "metadata.name":
				vals[e.Name] = podName
			case "metadata.namespace":
				vals[e.Name] = "default"
			case "status.podIP":
				vals[e.Name] = fmt.Sprintf("10.0.0.%d", 10+ordinal)
			default:
				t.Fatalf("env %s: fieldRef %s: unknown to this test", e.Name, p)
			}
		default:
			t.Fatalf("env %s: neither a value nor a fieldRef (a Secret must be a mounted file, not a variable)", e.Name)
		}
	}
	return vals
}

// portOf resolves a Service's targetPort or a probe's port (a number or the
// name of a container port) to a number.
func portOf(t *testing.T, c k8sContainer, p any, what string) int {
	t.Helper()
	switch v := p.(type) {
	case int:
		return v
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
		for _, cp := range c.Ports {
			if cp.Name == v {
				return cp.ContainerPort
			}
		}
		t.Fatalf("%s: port %q names no port of container %s", what, v, c.Name)
	case nil:
		t.Fatalf("%s: no port", what)
	}
	t.Fatalf("%s: port %v (%T) is neither a number nor a name", what, p, p)
	return 0
}

func TestKubernetesManifest(t *testing.T) {
	objs := k8sObjects(t)

	kinds := map[string][]k8sObject{}
	for _, o := range objs {
		kinds[o.Kind] = append(kinds[o.Kind], o)
	}
	want := map[string]int{"Service": 2, "StatefulSet": 1, "PodDisruptionBudget": 1, "Secret": 1}
	for k, n := range want {
		if len(kinds[k]) != n {
			t.Errorf("%d %s, want %d", len(kinds[k]), k, n)
		}
	}
	for k := range kinds {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected kind %s", k)
		}
	}
	apiVersions := map[string]string{"Service": "v1", "Secret": "v1", "StatefulSet": "apps/v1", "PodDisruptionBudget": "policy/v1"}
	for _, o := range objs {
		if o.APIVersion != apiVersions[o.Kind] {
			t.Errorf("%s %s: apiVersion %q, want %q", o.Kind, o.Metadata.Name, o.APIVersion, apiVersions[o.Kind])
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// ---- the StatefulSet and its one container
	stsObj := kinds["StatefulSet"][0]
	sts := decodeSpec[k8sStatefulSetSpec](t, stsObj)
	pod := sts.Template.Spec
	podLabels := sts.Template.Metadata.Labels
	if !selects(sts.Selector.MatchLabels, podLabels) {
		t.Fatalf("StatefulSet selector %v does not select its pods' labels %v", sts.Selector.MatchLabels, podLabels)
	}
	if sts.Replicas == nil || *sts.Replicas != 3 {
		t.Errorf("replicas %s, want 3", show(sts.Replicas))
	}
	replicas := 3
	if sts.Replicas != nil {
		replicas = *sts.Replicas
	}
	// OrderedReady would deadlock a restart of every pod: clusterkit-0
	// cannot be ready without a quorum, and would be the only one started.
	if sts.PodManagementPolicy != "Parallel" {
		t.Errorf("podManagementPolicy %q, want Parallel", sts.PodManagementPolicy)
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("%d containers and %d init containers, want the node only", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	if c.Image != "clusterkit-node:latest" {
		t.Errorf("image %q, want clusterkit-node:latest (as examples/k8s/README.md builds it)", c.Image)
	}
	if c.ImagePullPolicy != "IfNotPresent" && c.ImagePullPolicy != "Never" {
		t.Errorf("imagePullPolicy %q: a loaded image with tag latest needs IfNotPresent or Never (else it is pulled)", c.ImagePullPolicy)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort == 0 {
		t.Fatalf("container ports %+v, want the node's one port", c.Ports)
	}
	port := c.Ports[0].ContainerPort
	if len(c.EnvFrom) != 0 {
		t.Errorf("envFrom: every variable must be listed in env, to be checked here")
	}

	// ---- Services, PDB: the same pods, the same port
	var headless string
	for _, o := range kinds["Service"] {
		s := decodeSpec[k8sServiceSpec](t, o)
		if !selects(s.Selector, podLabels) {
			t.Errorf("Service %s: selector %v does not select the pods %v", o.Metadata.Name, s.Selector, podLabels)
		}
		if len(s.Ports) != 1 {
			t.Errorf("Service %s: %d ports, want 1", o.Metadata.Name, len(s.Ports))
		}
		for _, p := range s.Ports {
			if got := portOf(t, c, p.TargetPort, "Service "+o.Metadata.Name); got != port {
				t.Errorf("Service %s: targetPort %v is %d, the container's port is %d", o.Metadata.Name, p.TargetPort, got, port)
			}
		}
		if s.ClusterIP == "None" {
			if headless != "" {
				t.Errorf("two headless Services: %s and %s", headless, o.Metadata.Name)
			}
			headless = o.Metadata.Name
			if !s.PublishNotReadyAddresses {
				t.Errorf("headless Service %s: publishNotReadyAddresses must be true (pods join before they are ready)", o.Metadata.Name)
			}
		}
	}
	if headless == "" {
		t.Fatal("no headless Service (clusterIP: None)")
	}
	if sts.ServiceName != headless {
		t.Errorf("StatefulSet serviceName %q, want the headless Service %q", sts.ServiceName, headless)
	}
	pdbObj := kinds["PodDisruptionBudget"][0]
	pdb := decodeSpec[k8sPDBSpec](t, pdbObj)
	if !selects(pdb.Selector.MatchLabels, podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not select the pods %v", pdb.Selector.MatchLabels, podLabels)
	}
	if pdb.MaxUnavailable != 1 || pdb.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, minAvailable %v: want maxUnavailable 1 only", pdb.MaxUnavailable, pdb.MinAvailable)
	}

	// ---- probes
	for _, p := range []struct {
		name, path string
		probe      *k8sProbe
	}{{"readinessProbe", "/ready", c.ReadinessProbe}, {"livenessProbe", "/health", c.LivenessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet of %s", p.name, p.path)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s: path %q, want %s", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if got := portOf(t, c, p.probe.HTTPGet.Port, p.name); got != port {
			t.Errorf("%s: port %d, the container's is %d", p.name, got, port)
		}
	}
	if p := c.LivenessProbe; p != nil && p.FailureThreshold < 3 {
		t.Errorf("livenessProbe failureThreshold %d: a node that is busy but alive must not be killed for one slow answer", p.FailureThreshold)
	}
	if p := c.StartupProbe; p != nil {
		if p.HTTPGet == nil || (p.HTTPGet.Path != "/health" && p.HTTPGet.Path != "/ready") {
			t.Errorf("startupProbe: want an httpGet of /health or /ready")
		} else if got := portOf(t, c, p.HTTPGet.Port, "startupProbe"); got != port {
			t.Errorf("startupProbe: port %d, the container's is %d", got, port)
		}
	}

	// ---- the environment: names the node reads, no token in it
	read := readEnvNames()
	defined := map[string]bool{}
	for i, e := range c.Env {
		if defined[e.Name] {
			t.Errorf("env %s is defined twice", e.Name)
		}
		defined[e.Name] = true
		for _, m := range envRef.FindAllStringSubmatch(deref(e.Value), -1) {
			if !slices.ContainsFunc(c.Env[:i], func(p k8sEnvVar) bool { return p.Name == m[1] }) {
				t.Errorf("env %s refers to $(%s), which is not defined before it: Kubernetes would leave it as is", e.Name, m[1])
			}
		}
		if _, ok := read[e.Name]; ok {
			continue
		}
		// A helper: a downward-API value that only feeds other variables.
		helper := e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && !strings.HasPrefix(e.Name, envPrefix) &&
			slices.ContainsFunc(c.Env[i+1:], func(n k8sEnvVar) bool { return strings.Contains(deref(n.Value), "$("+e.Name+")") })
		if !helper {
			t.Errorf("env %s: the node program reads no such variable (a typo, or a flag that was renamed?)", e.Name)
		}
	}
	for _, n := range envNames("auth-token") {
		if defined[n] {
			t.Errorf("env %s: the token must come from the Secret as a file (CLUSTERKIT_AUTH_TOKEN_FILE), not from a variable", n)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && (e.ValueFrom.SecretKeyRef != nil || e.ValueFrom.ConfigMapKeyRef != nil) {
			t.Errorf("env %s: from a Secret or ConfigMap: the token must be a mounted file", e.Name)
		}
	}
	literal := func(name string) string {
		for _, e := range c.Env {
			if e.Name == name && e.Value != nil {
				return *e.Value
			}
		}
		return ""
	}
	if v := literal(envName("leave-on-exit")); v != "true" {
		t.Errorf("%s = %q, want \"true\": SIGTERM must leave the cluster", envName("leave-on-exit"), v)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < 30 {
		t.Errorf("terminationGracePeriodSeconds %s: Leave needs at least 30 s", show(g))
	}
	if id := slices.IndexFunc(c.Env, func(e k8sEnvVar) bool { return e.Name == "NODE_ID" || e.Name == envName("id") }); id < 0 ||
		c.Env[id].ValueFrom == nil || c.Env[id].ValueFrom.FieldRef == nil || c.Env[id].ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("the node ID must be the pod's name (NODE_ID from the downward API, metadata.name)")
	}

	// ---- the token file: mounted from the manifest's Secret
	tokenFile := literal(envName("auth-token-file"))
	if tokenFile == "" {
		t.Fatalf("%s is not set: the token must be read from the Secret's file", envName("auth-token-file"))
	}
	secret := kinds["Secret"][0]
	var token string
	mounted := false
	for _, m := range c.VolumeMounts {
		vol := slices.IndexFunc(pod.Volumes, func(v k8sVolume) bool { return v.Name == m.Name })
		if vol < 0 || pod.Volumes[vol].Secret == nil {
			continue
		}
		s := pod.Volumes[vol].Secret
		rel := m.SubPath
		if rel == "" {
			r, err := filepath.Rel(m.MountPath, tokenFile)
			if err != nil || strings.HasPrefix(r, "..") {
				continue
			}
			rel = r
		} else if m.MountPath != tokenFile {
			continue
		}
		key := rel // without items, each key is a file of its name
		if len(s.Items) > 0 {
			key = ""
			for _, it := range s.Items {
				if path.Clean(it.Path) == rel {
					key = it.Key
				}
			}
		}
		if s.SecretName != secret.Metadata.Name {
			t.Errorf("%s is mounted from Secret %q, the manifest's is %q", tokenFile, s.SecretName, secret.Metadata.Name)
		}
		if !m.ReadOnly {
			t.Errorf("the Secret's volume %s is not mounted readOnly", m.Name)
		}
		v, ok := secret.StringData[key]
		if !ok {
			_, ok = secret.Data[key]
			v = "placeholder-from-data"
		}
		if !ok {
			t.Errorf("%s is the Secret's key %q, which the Secret does not have", tokenFile, key)
		}
		token, mounted = v, true
	}
	if !mounted {
		t.Fatalf("%s (%s) is not in a volume of the Secret %s", envName("auth-token-file"), tokenFile, secret.Metadata.Name)
	}

	// ---- data on the claim template
	dataDir := ""
	for _, n := range envNames("data-dir") {
		if dataDir = literal(n); dataDir != "" {
			break
		}
	}
	claims := map[string]bool{}
	for _, v := range sts.VolumeClaimTemplates {
		claims[v.Metadata.Name] = true
	}
	if dataDir == "" || !slices.ContainsFunc(c.VolumeMounts, func(m k8sVolumeMount) bool { return m.MountPath == dataDir && claims[m.Name] }) {
		t.Errorf("the data directory %q is not a volume of the volumeClaimTemplates", dataDir)
	}

	// ---- security
	nonRoot := pod.SecurityContext.RunAsNonRoot
	if c.SecurityContext.RunAsNonRoot != nil {
		nonRoot = c.SecurityContext.RunAsNonRoot
	}
	uid := pod.SecurityContext.RunAsUser
	if c.SecurityContext.RunAsUser != nil {
		uid = c.SecurityContext.RunAsUser
	}
	if nonRoot == nil || !*nonRoot || uid == nil || *uid != 65532 {
		t.Errorf("runAsNonRoot %s, runAsUser %s: want true and 65532 (the image's user)", show(nonRoot), show(uid))
	}
	if r := c.SecurityContext.ReadOnlyRootFilesystem; r == nil || !*r {
		t.Errorf("readOnlyRootFilesystem must be true (the node writes only its data directory)")
	}

	// ---- each pod's environment, parsed by serve itself
	tokenPath := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenPath, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for n := range read {
		t.Setenv(n, "") // empty is unset: only the manifest's variables count
	}
	advertised := map[string]int{} // advertised address -> ordinal
	joins := make([][]string, replicas)
	for i := range replicas {
		podName := fmt.Sprintf("%s-%d", stsObj.Metadata.Name, i)
		env := expandEnv(t, c.Env, podName, i)
		for n, v := range env {
			if n == envName("auth-token-file") {
				v = tokenPath // the Secret's file, here
			}
			t.Setenv(n, v)
		}
		fs, apply, x := serveFlags()
		fs.SetOutput(io.Discard)
		if pos, err := fs.parse(nil); err != nil || len(pos) > 0 {
			t.Fatalf("%s: serve does not accept the environment: %v %q", podName, err, pos)
		}
		o := clusterkit.DefaultOptions()
		if err := apply(&o); err != nil {
			t.Fatalf("%s: serve does not accept the environment: %v", podName, err)
		}
		if o.NodeID != podName {
			t.Errorf("%s: node ID %q", podName, o.NodeID)
		}
		if !x.leave {
			t.Errorf("%s: -leave-on-exit is off", podName)
		}
		if o.AuthTokenFile != tokenPath || o.AuthToken != "" {
			t.Errorf("%s: token file %q (token %q), want the Secret's file %q", podName, o.AuthTokenFile, o.AuthToken, tokenPath)
		} else if data, err := os.ReadFile(o.AuthTokenFile); err != nil {
			t.Error(err)
		} else if set, err := auth.Parse(data); err != nil || set.Primary() != token {
			t.Errorf("%s: the Secret's file does not give its token: %v", podName, err)
		}
		if o.DataDir != dataDir {
			t.Errorf("%s: data directory %q, want %q", podName, o.DataDir, dataDir)
		}
		if _, p, err := net.SplitHostPort(o.HTTPAddr); err != nil || p != strconv.Itoa(port) {
			t.Errorf("%s: listens on %q, not on the container's port %d", podName, o.HTTPAddr, port)
		}
		// The probes of the CLI (node probe, node members) ask this pod's node.
		if a, ok := env[envName("addr")]; ok && a != o.HTTPAddr {
			t.Errorf("%s: %s is %q, the node listens on %q", podName, envName("addr"), a, o.HTTPAddr)
		}
		// Advertised: the pod's stable name under the headless Service.
		host, p, err := net.SplitHostPort(o.AdvertiseAddr)
		if err != nil || p != strconv.Itoa(port) || (host != podName+"."+headless && !strings.HasPrefix(host, podName+"."+headless+".")) {
			t.Errorf("%s: advertises %q, want %s.%s[.<namespace>...]:%d, its stable DNS name", podName, o.AdvertiseAddr, podName, headless, port)
		}
		if _, dup := advertised[o.AdvertiseAddr]; dup {
			t.Errorf("%s: advertises %q like another pod", podName, o.AdvertiseAddr)
		}
		advertised[o.AdvertiseAddr] = i
		// The node drops its own advertised address from the join
		// addresses (clusterkit's seeds); with none left and no state it
		// bootstraps.
		for _, a := range o.JoinAddrs {
			if a != o.AdvertiseAddr {
				joins[i] = append(joins[i], a)
			}
		}
	}
	for i, js := range joins {
		if i == 0 && len(js) != 0 {
			t.Errorf("%s-0 joins through %v: it must have no join address but its own, to bootstrap the cluster", stsObj.Metadata.Name, js)
		}
		if i > 0 && len(js) == 0 {
			t.Errorf("%s-%d has no join address: it would bootstrap a second cluster", stsObj.Metadata.Name, i)
		}
		for _, a := range js {
			if _, ok := advertised[a]; !ok {
				t.Errorf("%s-%d joins through %q, which no pod advertises", stsObj.Metadata.Name, i, a)
			}
		}
	}
}

// show prints *p, or "unset".
func show[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
