//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The module this package belongs to; repoRoot finds its go.mod.
const rootModule = "github.com/s3direct/s3direct"

var (
	repoRootOnce sync.Once
	repoRootDir  string
	repoRootErr  error

	// Files shared by the whole run (the conformance binary), removed by
	// TestMain.
	sharedDirOnce sync.Once
	sharedDir     string
	sharedDirErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// runShared returns a directory that lives as long as this test binary.
func runShared(t *testing.T) string {
	t.Helper()
	sharedDirOnce.Do(func() {
		sharedDir, sharedDirErr = os.MkdirTemp("", "s3direct-integration-")
	})
	if sharedDirErr != nil {
		t.Fatalf("temp dir: %v", sharedDirErr)
	}
	return sharedDir
}

// repoRoot is the directory of the root go.mod (go test runs us in
// tests/integration).
func repoRoot(t *testing.T) string {
	t.Helper()
	repoRootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			repoRootErr = err
			return
		}
		for {
			b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && regexp.MustCompile(`(?m)^module\s+`+regexp.QuoteMeta(rootModule)+`\s*$`).Match(b) {
				repoRootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				repoRootErr = fmt.Errorf("no go.mod of module %s above the working directory", rootModule)
				return
			}
			dir = parent
		}
	})
	if repoRootErr != nil {
		t.Fatalf("repository root: %v", repoRootErr)
	}
	return repoRootDir
}

// reproHint prints, when the test fails, how to run it again alone.
func reproHint(t *testing.T) {
	t.Helper()
	name := t.Name()
	t.Cleanup(func() {
		if t.Failed() {
			top := strings.SplitN(name, "/", 2)[0]
			t.Logf("reproduce: make build && tests/with-s3.sh go test -count=1 -v -run '^%s$' ./tests/integration/", top)
		}
	})
}

// ---------------------------------------------------------------- needs ----

// s3Env is the S3 server tests/with-s3.sh started.
type s3Env struct {
	Endpoint, AccessKey, SecretKey, Region string
}

func needS3(t *testing.T) s3Env {
	t.Helper()
	e := s3Env{
		Endpoint:  os.Getenv("S3D_TEST_ENDPOINT"),
		AccessKey: os.Getenv("S3D_TEST_ACCESS_KEY"),
		SecretKey: os.Getenv("S3D_TEST_SECRET_KEY"),
		Region:    os.Getenv("S3D_TEST_REGION"),
	}
	if e.Endpoint == "" || e.AccessKey == "" || e.SecretKey == "" {
		t.Fatalf("S3D_TEST_ENDPOINT, S3D_TEST_ACCESS_KEY and S3D_TEST_SECRET_KEY are not set: " +
			"these tests need the S3 server of tests/with-s3.sh; run `make test`, or " +
			"`tests/with-s3.sh go test -count=1 ./tests/integration/`")
	}
	if e.Region == "" {
		e.Region = "us-east-1"
	}
	return e
}

// buildBin is build/NAME, which `make build` produces.
func buildBin(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), "build", name)
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		t.Fatalf("%s is missing (%v): run `make build` first", p, err)
	}
	return p
}

// toolBin is .tools/bin/NAME, which scripts/deps.sh (`make deps`) installs.
func toolBin(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(repoRoot(t), ".tools", "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing (%v): run `make deps` (scripts/deps.sh installs the pinned clients)", p, err)
	}
	return p
}

func goCommand(t *testing.T) string {
	t.Helper()
	if g := os.Getenv("GO"); g != "" {
		if p, err := exec.LookPath(g); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		return "/usr/local/go/bin/go"
	}
	t.Fatalf("the go command is not in PATH nor at /usr/local/go/bin/go")
	return ""
}

// ------------------------------------------------------------- helpers ----

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// shellQuote renders one word for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cmdLine renders a command with the environment variables it was given
// beyond ours, for a human to paste into a shell.
func cmdLine(extraEnv []string, dir string, argv []string) string {
	var b strings.Builder
	if dir != "" {
		fmt.Fprintf(&b, "(cd %s && ", shellQuote(dir))
	}
	for _, e := range extraEnv {
		k, v, _ := strings.Cut(e, "=")
		fmt.Fprintf(&b, "%s=%s ", k, shellQuote(v))
	}
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(shellQuote(a))
	}
	if dir != "" {
		b.WriteByte(')')
	}
	return redactCreds(b.String())
}

// redactCreds shows the test S3 credentials as the variables that hold
// them (the line still works inside tests/with-s3.sh).
func redactCreds(s string) string {
	for _, k := range []string{"S3D_TEST_SECRET_KEY", "S3D_TEST_ACCESS_KEY"} {
		if v := os.Getenv(k); len(v) >= 8 {
			s = strings.ReplaceAll(s, v, "\"${"+k+"}\"")
		}
	}
	return s
}

// announce logs a line and also shows it in the output of a plain `go test
// ./...` (as `make test` runs it), which prints nothing of a package that
// passes: without -v the line goes to the go command's own standard output.
func announce(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	if testing.Verbose() {
		fmt.Println(line)
		return
	}
	ppid := os.Getppid()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", ppid))
	if err != nil || filepath.Base(exe) != "go" {
		fmt.Println(line)
		return
	}
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/1", ppid), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		fmt.Println(line)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "    integration: %s\n", line)
}

// ------------------------------------------------------------ commands ----

// cmdResult is what a finished command printed.
type cmdResult struct {
	Stdout, Stderr string
	Err            error
	Line           string // to reproduce it
}

// runCmd runs argv with extraEnv added to ours, in its own process group
// (killed whole at the timeout), and returns what it printed.
func runCmd(ctx context.Context, timeout time.Duration, dir string, extraEnv []string, stdin io.Reader, argv ...string) cmdResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(inheritedEnv(), extraEnv...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %v (%v)", timeout, err)
	}
	return cmdResult{Stdout: stdout.String(), Stderr: stderr.String(), Err: err, Line: cmdLine(extraEnv, dir, argv)}
}

// inheritedEnv is our environment less what would point the clients at the
// user's configuration, and less the variables that would change what a
// command does behind its arguments: REGISTRY_* (overrides of a registry
// configuration) and OCI_* (the conformance programs' settings).
func inheritedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "DOCKER_CONFIG", k == "REGCTL_CONFIG", k == "XDG_CONFIG_HOME",
			strings.HasPrefix(k, "REGISTRY_"), strings.HasPrefix(k, "OCI_"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

// mustRun is runCmd that fails the test, with the command line and its
// output, when the command fails.
func mustRun(t *testing.T, timeout time.Duration, dir string, extraEnv []string, stdin io.Reader, argv ...string) string {
	t.Helper()
	start := time.Now()
	r := runCmd(context.Background(), timeout, dir, extraEnv, stdin, argv...)
	t.Logf("ran (%.1fs): %s", time.Since(start).Seconds(), r.Line)
	if r.Err != nil {
		t.Fatalf("command failed: %v\n  command: %s\n  stdout:\n%s\n  stderr:\n%s",
			r.Err, r.Line, indent(clip(r.Stdout, 4000)), indent(clip(r.Stderr, 4000)))
	}
	return r.Stdout
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[...]\n" + s[len(s)-n:]
}

func clipHead(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n[...]"
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "    (empty)"
	}
	return "    | " + strings.ReplaceAll(s, "\n", "\n    | ")
}

// ------------------------------------------------------------------ S3 ----

// makeBucket creates a fresh bucket with build/s3d mb.
func makeBucket(t *testing.T, e s3Env) string {
	t.Helper()
	name := "it-" + randHex(6)
	env := []string{"AWS_ACCESS_KEY_ID=" + e.AccessKey, "AWS_SECRET_ACCESS_KEY=" + e.SecretKey}
	mustRun(t, time.Minute, "", env, nil, buildBin(t, "s3d"), "mb",
		"--endpoint", e.Endpoint, "--bucket", name, "--region", e.Region)
	return name
}

// ------------------------------------------------------------ registry ----

// storageS3direct is the storage section of a registry on the test S3
// server (as registry-config/config.yml, on another bucket and root).
func storageS3direct(e s3Env, bucket, rootdir string) string {
	return fmt.Sprintf(`  s3direct:
    regionendpoint: %s
    region: %s
    bucket: %s
    accesskey: %s
    secretkey: %s
    forcepathstyle: true
    secure: false
    rootdirectory: %s
`, e.Endpoint, e.Region, bucket, e.AccessKey, e.SecretKey, rootdir)
}

func storageFilesystem(dir string) string {
	return fmt.Sprintf("  filesystem:\n    rootdirectory: %s\n", dir)
}

type regOptions struct {
	Secret   string // http.secret; random when empty
	Redirect bool   // storage.redirect on (presigned blob downloads)
	ReadOnly bool   // storage.maintenance.readonly on
	// Auth is the body of the auth: section (lines indented by two
	// spaces, e.g. "  htpasswd:\n    realm: r\n    path: /f\n"); none
	// when empty. With it, /v2/ answering 401 counts as ready.
	Auth string
}

// htpasswdRealm is the realm of the auth sections htpasswdAuth writes.
const htpasswdRealm = "s3direct-test"

// htpasswdAuth writes an htpasswd file with one user (bcrypt, minimum cost)
// and returns the regOptions.Auth section that points the registry at it:
// HTTP basic auth, realm htpasswdRealm.
func htpasswdAuth(t *testing.T, user, pass string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("  htpasswd:\n    realm: %s\n    path: %s\n", htpasswdRealm, file)
}

// registry is one build/registry serve process.
type registry struct {
	Name   string
	Addr   string // 127.0.0.1:PORT
	Config string // path of its config file
	Log    string // path of its log (stdout and stderr)
	Argv   []string

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // of Wait, once exited is closed

	// What it was started with (storage with its sessionindex, options
	// with the secret), for restartRegistry.
	storage string
	opts    regOptions
}

func (r *registry) URL() string { return "http://" + r.Addr }

func registryConfig(storage string, port int, o regOptions) string {
	auth, readOnly := "", ""
	if o.Auth != "" {
		auth = "auth:\n" + o.Auth
	}
	if o.ReadOnly {
		readOnly = "    readonly:\n      enabled: true\n"
	}
	return fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
%s  delete:
    enabled: true
  redirect:
    disable: %t
  maintenance:
    uploadpurging:
      enabled: false
%shttp:
  addr: 127.0.0.1:%d
  secret: %s
  headers:
    X-Content-Type-Options: [nosniff]
%s`, storage, !o.Redirect, readOnly, port, o.Secret, auth)
}

var regSeq atomic.Int64

// startRegistry starts build/registry serve with a config made of storage
// (the lines under `storage:`) and waits until /v2/ answers. The process
// group is killed when the test ends; when the test failed, the log is kept
// in build/test/logs/integration/ and its errors are printed.
func startRegistry(t *testing.T, name, storage string, o regOptions) *registry {
	t.Helper()
	bin := buildBin(t, "registry")
	if o.Secret == "" {
		o.Secret = randHex(32)
	}
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("registry-%d-%s", regSeq.Add(1), name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Each process its own session index (LMDB is node-local), unless the
	// test chose one (the s3direct block is the last of storage).
	if strings.Contains(storage, "  s3direct:\n") && !strings.Contains(storage, "sessionindex:") {
		storage += "    sessionindex: " + filepath.Join(dir, "sessions") + "\n"
	}
	var lastLog string
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		r := &registry{
			Name:    name,
			Addr:    fmt.Sprintf("127.0.0.1:%d", port),
			Config:  filepath.Join(dir, "config.yml"),
			Log:     filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt)),
			exited:  make(chan struct{}),
			storage: storage,
			opts:    o,
		}
		if err := os.WriteFile(r.Config, []byte(registryConfig(storage, port, o)), 0o600); err != nil {
			t.Fatal(err)
		}
		logf, err := os.Create(r.Log)
		if err != nil {
			t.Fatal(err)
		}
		r.Argv = []string{bin, "serve", r.Config}
		r.cmd = exec.Command(bin, "serve", r.Config)
		// The stock registry exports traces to localhost:4318 unless told
		// not to (OpenTelemetry's default).
		r.cmd.Env = append(inheritedEnv(), "OTEL_TRACES_EXPORTER=none")
		r.cmd.Stdout = logf
		r.cmd.Stderr = logf
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := r.cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("start %s: %v", cmdLine(nil, "", r.Argv), err)
		}
		logf.Close()
		go func() { r.err = r.cmd.Wait(); close(r.exited) }()
		t.Cleanup(func() { r.stop(t) })

		if err := r.waitReady(30*time.Second, o.Auth != ""); err != nil {
			log, _ := os.ReadFile(r.Log)
			lastLog = string(log)
			if strings.Contains(lastLog, "address already in use") {
				continue // lost the port to someone else: another one
			}
			t.Fatalf("registry %s did not come up: %v\n  command: %s\n  config %s:\n%s\n  log:\n%s",
				name, err, cmdLine(nil, "", r.Argv), r.Config, indent(redact(registryConfig(storage, port, o))), indent(clip(lastLog, 6000)))
		}
		t.Logf("registry %s at %s: %s (log %s)", name, r.URL(), cmdLine(nil, "", r.Argv), r.Log)
		return r
	}
	t.Fatalf("registry %s: no free port after 5 tries; last log:\n%s", name, indent(clip(lastLog, 4000)))
	return nil
}

// waitReady waits for GET /v2/ to answer 200 (or 401 when authOK: a
// registry with an access controller).
func (r *registry) waitReady(timeout time.Duration, authOK bool) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-r.exited:
			return fmt.Errorf("exited: %v", r.err)
		default:
		}
		resp, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || (authOK && resp.StatusCode == http.StatusUnauthorized) {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill ends the process group with SIGKILL (no clean shutdown) and waits
// for the registry to exit.
func (r *registry) kill() {
	select {
	case <-r.exited:
		return
	default:
	}
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.exited
}

// restartRegistry SIGKILLs old (when it still runs) and starts a registry
// with the same configuration: the same storage section (so the same
// sessionindex directory), secret and options; only the port may differ.
func restartRegistry(t *testing.T, old *registry) *registry {
	t.Helper()
	old.kill()
	return startRegistry(t, old.Name+"-restarted", old.storage, old.opts)
}

// stop ends the process group (TERM, then KILL) and, if the test failed,
// keeps and summarizes the log.
func (r *registry) stop(t *testing.T) {
	select {
	case <-r.exited:
	default:
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.exited
		}
	}
	// Whatever is left of the group (the registry starts no children, but
	// make sure).
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	if !t.Failed() {
		if os.Getenv("S3D_IT_KEEP_LOGS") != "" {
			t.Logf("registry %s log kept: %s", r.Name, keepLog(t, r))
		}
		return
	}
	kept := keepLog(t, r)
	t.Logf("registry %s (%s) log: %s\n  started as: %s\n  errors and warnings in its log:\n%s",
		r.Name, r.Addr, kept, cmdLine(nil, "", r.Argv), indent(logProblems(r.Log, 60)))
}

// keepLog copies the log and config of r to build/test/logs/integration/.
func keepLog(t *testing.T, r *registry) string {
	root := repoRootDir
	if root == "" {
		return r.Log
	}
	dir := filepath.Join(root, "build", "test", "logs", "integration",
		regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r.Log
	}
	base := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(r.Name+"-"+r.Addr, "_")
	dst := filepath.Join(dir, base+".log")
	if b, err := os.ReadFile(r.Log); err == nil && os.WriteFile(dst, b, 0o644) == nil {
		if c, err := os.ReadFile(r.Config); err == nil {
			os.WriteFile(filepath.Join(dir, base+".config.yml"), []byte(redact(string(c))), 0o644)
		}
		return dst
	}
	return r.Log
}

// redact hides the S3 secret key of a config.
func redact(config string) string {
	return regexp.MustCompile(`(?m)^(\s*secretkey:).*$`).ReplaceAllString(config, "$1 <S3D_TEST_SECRET_KEY>")
}

// logProblems returns the error, warning and panic lines of a registry log
// but for its 4xx responses (at most max of them, the last ones), or its
// tail when there are none.
func logProblems(path string, max int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var hits, all []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	re := regexp.MustCompile(`level=(error|warning|fatal|panic)|^panic:|^goroutine |runtime error|SIGSEGV`)
	// The 4xx answers the tests provoke on purpose are logged as errors.
	client := regexp.MustCompile(`http\.response\.status=4\d\d\b`)
	for sc.Scan() {
		line := sc.Text()
		all = append(all, line)
		if re.MatchString(line) && !client.MatchString(line) {
			hits = append(hits, line)
		}
	}
	pick := hits
	if len(pick) == 0 {
		pick = all
	}
	if len(pick) > max {
		pick = pick[len(pick)-max:]
	}
	return strings.Join(pick, "\n")
}

// countRequests counts the access-log lines of METHOD requests whose path
// starts with prefix.
func countRequests(t *testing.T, r *registry, method, prefix string) int {
	t.Helper()
	b, err := os.ReadFile(r.Log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), `"`+method+" "+prefix)
}

// --------------------------------------------------------------- proxy ----

// rrProxy is a loopback reverse proxy that sends each request to the next
// backend in turn. The requests of one blob upload (/blobs/uploads/<id>)
// alternate on their own counter, so consecutive PATCHes of an upload never
// reach the same backend twice in a row.
type rrProxy struct {
	Addr     string
	backends []*url.URL
	names    []string
	srv      *http.Server

	next    atomic.Uint64
	mu      sync.Mutex
	uploads map[string]int
	counts  map[string]int // "backend METHOD" -> requests
}

var uploadIDRe = regexp.MustCompile(`/blobs/uploads/([^/?]+)`)

func startProxy(t *testing.T, backends ...*registry) *rrProxy {
	t.Helper()
	p := &rrProxy{uploads: map[string]int{}, counts: map[string]int{}}
	for _, b := range backends {
		u, _ := url.Parse(b.URL())
		p.backends = append(p.backends, u)
		p.names = append(p.names, b.Name)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			i := p.pick(pr.In)
			pr.SetURL(p.backends[i])
			// The registry builds Location URLs from Host: keep ours.
			pr.Out.Host = pr.In.Host
			p.mu.Lock()
			p.counts[p.names[i]+" "+pr.In.Method]++
			p.mu.Unlock()
		},
		ErrorLog: nil,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p.Addr = l.Addr().String()
	p.srv = &http.Server{Handler: rp, ReadHeaderTimeout: 30 * time.Second}
	go p.srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.srv.Shutdown(ctx); err != nil {
			p.srv.Close()
		}
	})
	t.Logf("round-robin proxy at http://%s over %v", p.Addr, p.names)
	return p
}

func (p *rrProxy) pick(r *http.Request) int {
	n := len(p.backends)
	if m := uploadIDRe.FindStringSubmatch(r.URL.Path); m != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		c, ok := p.uploads[m[1]]
		if !ok {
			// The upload was created (POST) on the backend the global
			// counter chose last; continue on the one after. Either way
			// the ids are spread over all backends.
			c = int(p.next.Add(1))
		}
		p.uploads[m[1]] = c + 1
		return c % n
	}
	return int(p.next.Add(1) % uint64(n))
}

// Count returns how many METHOD requests backend name received.
func (p *rrProxy) Count(name, method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[name+" "+method]
}

// Counts renders the requests per backend, e.g.
// "A: 40 requests (PATCH 17, POST 3, PUT 5, ...)".
func (p *rrProxy) Counts() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for _, name := range p.names {
		total := 0
		var methods []string
		for _, m := range []string{"PATCH", "POST", "PUT", "GET", "HEAD", "DELETE"} {
			if n := p.counts[name+" "+m]; n > 0 {
				total += n
				methods = append(methods, fmt.Sprintf("%s %d", m, n))
			}
		}
		parts = append(parts, fmt.Sprintf("%s: %d requests (%s)", name, total, strings.Join(methods, ", ")))
	}
	return strings.Join(parts, "; ")
}
