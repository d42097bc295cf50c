//go:build linux

package integration

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The conformance suite's module, pinned in testdata/conformance/go.mod.
const conformancePkg = "github.com/opencontainers/distribution-spec/conformance"

// minConformancePassed: fewer passed specs on s3direct means the suite did
// not really run (it has 79 specs; stock distribution passes 68 of them).
const minConformancePassed = 60

// The current conformance program (testdata/conformance-current/go.mod):
// stock distribution on filesystem storage passes 579 of its 688 tests with
// the settings of runCurrentConformance.
const minCurrentPassed = 500

// A test program built once per run of this test binary.
type builtOnce struct {
	once sync.Once
	bin  string
	err  error
}

var conformanceBuilt, currentBuilt builtOnce

// build compiles pkg in tests/integration/testdata/<dir> (a module of its
// own) with `go <verb> ... -o out pkg`.
func (b *builtOnce) build(t *testing.T, dir, name string, verb ...string) string {
	t.Helper()
	b.once.Do(func() {
		out := filepath.Join(runShared(t), name)
		mod := filepath.Join(repoRoot(t), "tests", "integration", "testdata", dir)
		env := []string{"GOWORK=off", "GOFLAGS=" + strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=readonly"), "CGO_ENABLED=0"}
		argv := append(append([]string{goCommand(t)}, verb...), "-o", out, conformancePkg)
		start := time.Now()
		r := runCmd(t.Context(), 10*time.Minute, mod, env, nil, argv...)
		if r.Err != nil {
			b.err = fmt.Errorf("building %s failed: %v\n  command: %s\n  output:\n%s",
				name, r.Err, r.Line, indent(clip(r.Stdout+r.Stderr, 6000)))
			return
		}
		t.Logf("%s built in %.1fs: %s", name, time.Since(start).Seconds(), r.Line)
		b.bin = out
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// conformanceBinary: the Ginkgo suite (go test -c in testdata/conformance).
func conformanceBinary(t *testing.T) string {
	return conformanceBuilt.build(t, "conformance", "conformance.test", "test", "-c")
}

// currentConformanceBinary: the 2026 program (go build in
// testdata/conformance-current).
func currentConformanceBinary(t *testing.T) string {
	return currentBuilt.build(t, "conformance-current", "oci-conformance", "build")
}

// specResult is the outcome of one spec in a junit report.
type specResult struct {
	Key     string // name @ file:line (names repeat in the suite)
	Status  string // passed, failed, skipped, ...
	Message string // failure message
}

func (s specResult) passed() bool { return s.Status == "passed" }
func (s specResult) skipped() bool {
	return s.Status == "skipped" || s.Status == "pending" || s.Status == "disabled"
}

type conformanceRun struct {
	Target              string
	Specs               map[string]specResult
	Order               []string
	Passed, Failed, Skp int
	Report              string // junit.xml
	Line                string // command to reproduce
}

var enterItRe = regexp.MustCompile(`Enter \[It\] .* - (\S+):(\d+) @`)

// parseJUnit reads the junit.xml that the suite wrote (OCI_REPORT_DIR).
func parseJUnit(path string) (*conformanceRun, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name      string    `xml:"name,attr"`
				Status    string    `xml:"status,attr"`
				Failure   *failure  `xml:"failure"`
				Error     *failure  `xml:"error"`
				Skipped   *struct{} `xml:"skipped"`
				SystemErr string    `xml:"system-err"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	run := &conformanceRun{Specs: map[string]specResult{}, Report: path}
	seen := map[string]int{}
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			// Only specs: not the suite's own report nodes
			// ([ReportAfterSuite] and the like).
			if !strings.HasPrefix(c.Name, "[It] ") {
				continue
			}
			key := c.Name
			if m := enterItRe.FindStringSubmatch(c.SystemErr); m != nil {
				key += " @ " + filepath.Base(m[1]) + ":" + m[2]
			}
			seen[key]++
			if seen[key] > 1 {
				key += fmt.Sprintf(" #%d", seen[key])
			}
			r := specResult{Key: key, Status: c.Status}
			switch {
			case r.Status == "" && c.Skipped != nil:
				r.Status = "skipped"
			case r.Status == "" && (c.Failure != nil || c.Error != nil):
				r.Status = "failed"
			case r.Status == "":
				r.Status = "passed"
			}
			for _, f := range []*failure{c.Failure, c.Error} {
				if f != nil {
					r.Message = strings.TrimSpace(f.Message)
					if r.Message == "" {
						r.Message = strings.TrimSpace(f.Text)
					}
				}
			}
			switch {
			case r.passed():
				run.Passed++
			case r.skipped():
				run.Skp++
			default:
				run.Failed++
			}
			run.Specs[key] = r
			run.Order = append(run.Order, key)
		}
	}
	return run, nil
}

// runConformance runs the whole suite (pull, push, content discovery,
// content management) against the registry at rootURL.
func runConformance(t *testing.T, target, rootURL string) *conformanceRun {
	t.Helper()
	bin := conformanceBinary(t)
	dir := filepath.Join(t.TempDir(), "conformance-"+target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ns := "conformance/" + randHex(4)
	env := []string{
		"OCI_ROOT_URL=" + rootURL,
		"OCI_NAMESPACE=" + ns + "/main",
		"OCI_CROSSMOUNT_NAMESPACE=" + ns + "/cross",
		"OCI_TEST_PULL=1",
		"OCI_TEST_PUSH=1",
		"OCI_TEST_CONTENT_DISCOVERY=1",
		"OCI_TEST_CONTENT_MANAGEMENT=1",
		"OCI_HIDE_SKIPPED_WORKFLOWS=0",
		// Distribution does not mount without from=: this runs the spec
		// that a mount without it starts an upload (202).
		"OCI_AUTOMATIC_CROSSMOUNT=0",
		"OCI_DEBUG=0",
		"OCI_REPORT_DIR=" + dir,
	}
	return runSuite(t, "conformance", target, dir, env, parseJUnit, bin, "-ginkgo.no-color")
}

// runSuite runs argv in dir with env and reads the junit.xml it wrote there
// with parse. The programs exit non-zero whenever a test fails (stock
// distribution fails some): only the report decides.
func runSuite(t *testing.T, suite, target, dir string, env []string,
	parse func(string) (*conformanceRun, error), argv ...string) *conformanceRun {
	t.Helper()
	start := time.Now()
	r := runCmd(t.Context(), 5*time.Minute, dir, env, nil, argv...)
	if err := os.WriteFile(filepath.Join(dir, "output.txt"), []byte(r.Stdout+r.Stderr), 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := parse(filepath.Join(dir, "junit.xml"))
	if err != nil {
		t.Fatalf("%s on %s wrote no usable report (%v; exit: %v)\n  command: %s\n  output:\n%s",
			suite, target, err, r.Err, r.Line, indent(clip(r.Stdout+r.Stderr, 6000)))
	}
	run.Target = target
	run.Line = r.Line
	announce(t, "%s on %s: %.1fs (limit 5 min)", suite, target, time.Since(start).Seconds())
	t.Logf("%s on %s: exit %v, report %s", suite, target, r.Err, run.Report)
	return run
}

// parseCurrentJUnit reads the junit.xml of the current conformance program:
// one testcase per test, named by its path ("OCI Conformance Test/..."),
// status passed, skipped, failure or error. Some names repeat (one test per
// blob or manifest of a data set), in an order that varies from run to run:
// the results of one name are keyed passed first ("name", "name #2", ...),
// so that two runs compare by how many of them passed. (Which instance
// passed cannot be told apart.)
func parseCurrentJUnit(path string) (*conformanceRun, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type result struct {
		Message string `xml:"message,attr"`
		Data    string `xml:",cdata"`
	}
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name      string  `xml:"name,attr"`
				Status    string  `xml:"status,attr"`
				Failure   *result `xml:"failure"`
				Error     *result `xml:"error"`
				SystemOut string  `xml:"system-out"`
				SystemErr string  `xml:"system-err"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	run := &conformanceRun{Specs: map[string]specResult{}, Report: path}
	byName := map[string][]specResult{}
	var names []string
	for _, st := range doc.Suites {
		for _, c := range st.Cases {
			r := specResult{Status: c.Status}
			if r.Status == "" {
				r.Status = "no status"
			}
			for _, f := range []*result{c.Failure, c.Error} {
				if f != nil {
					r.Message = strings.TrimSpace(f.Message + "\n" + f.Data)
				}
			}
			if r.Message == "" && !r.passed() {
				// the program reports a failure in system-out, the
				// requests it made in system-err
				r.Message = strings.TrimSpace(c.SystemOut + "\n" + clipHead(c.SystemErr, 2000))
			}
			if _, ok := byName[c.Name]; !ok {
				names = append(names, c.Name)
			}
			byName[c.Name] = append(byName[c.Name], r)
		}
	}
	for _, name := range names {
		rs := byName[name]
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].passed() && !rs[j].passed() })
		for i, r := range rs {
			r.Key = name
			if i > 0 {
				r.Key += fmt.Sprintf(" #%d", i+1)
			}
			switch {
			case r.passed():
				run.Passed++
			case r.skipped():
				run.Skp++
			default: // failure, error, or no status: not a pass
				run.Failed++
			}
			run.Specs[r.Key] = r
			run.Order = append(run.Order, r.Key)
		}
	}
	return run, nil
}

// runCurrentConformance runs the current conformance program against the
// registry at addr (host:port, plain HTTP), every API and data set it has on
// by default, plus the upload cancel (DELETE of an upload) that distribution
// supports.
func runCurrentConformance(t *testing.T, target, addr string) *conformanceRun {
	t.Helper()
	bin := currentConformanceBinary(t)
	dir := filepath.Join(t.TempDir(), "conformance-current-"+target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ns := "conformance-current/" + randHex(4)
	env := []string{
		"OCI_REGISTRY=" + addr,
		"OCI_TLS=disabled",
		"OCI_VERSION=1.1",
		"OCI_REPO1=" + ns + "/repo1",
		"OCI_REPO2=" + ns + "/repo2",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
		"OCI_LOG=warn",
		"OCI_RESULTS_DIR=" + dir,
	}
	return runSuite(t, "conformance-current", target, dir, env, parseCurrentJUnit, bin)
}

// compareConformance fails on every test that passes on filesystem (runs[0])
// but not on a later run, and on a run with fewer than min passes (then the
// suite did not really run).
func compareConformance(t *testing.T, suite string, min int, runs []*conformanceRun) {
	t.Helper()
	fsRun := runs[0]
	for _, r := range runs {
		announce(t, "%s %-15s passed=%d failed=%d skipped=%d", suite, r.Target+":", r.Passed, r.Failed, r.Skp)
		if r.Passed < min {
			t.Errorf("%s on %s: only %d passed (want >= %d): did it run?\n  command: %s",
				suite, r.Target, r.Passed, min, r.Line)
		}
	}
	for _, r := range runs[1:] {
		var worse []string
		for _, key := range fsRun.Order {
			if !fsRun.Specs[key].passed() {
				continue
			}
			got, ok := r.Specs[key]
			switch {
			case got.passed():
			case !ok:
				worse = append(worse, fmt.Sprintf("%s: missing from the %s report", key, r.Target))
			case len(worse) < 10:
				worse = append(worse, fmt.Sprintf("%s: %s\n%s", key, got.Status, indent(clipHead(got.Message, 1200))))
			default:
				worse = append(worse, fmt.Sprintf("%s: %s", key, got.Status))
			}
		}
		if len(worse) > 0 {
			t.Errorf("%s: %d test(s) pass on filesystem but not on %s:\n- %s\n  rerun: %s\n  (registry config and log: see below)",
				suite, len(worse), r.Target, strings.Join(worse, "\n- "), r.Line)
		}
		var better []string
		for _, key := range r.Order {
			if r.Specs[key].passed() && !fsRun.Specs[key].passed() {
				better = append(better, key)
			}
		}
		sort.Strings(better)
		if len(better) > 0 {
			t.Logf("%s: %s passes %d test(s) that filesystem does not: %s", suite, r.Target, len(better), strings.Join(better, "; "))
		}
	}
	var fsFailed []string
	for _, key := range fsRun.Order {
		if s := fsRun.Specs[key]; !s.passed() && !s.skipped() {
			fsFailed = append(fsFailed, key)
		}
	}
	t.Logf("%s: tests that fail on stock filesystem storage too:\n- %s", suite, strings.Join(fsFailed, "\n- "))
}

// TestConformance runs the OCI distribution-spec conformance suite against
// build/registry with s3direct storage (one process, and two processes on
// the same bucket behind a round-robin proxy) and with the stock filesystem
// driver, and fails when a spec passes on filesystem but not on s3direct.
func TestConformance(t *testing.T) {
	reproHint(t)
	e := needS3(t)
	conformanceBinary(t) // fail early, before starting anything
	currentConformanceBinary(t)

	bucket := makeBucket(t, e)
	// presign on: the middleware in front of the stock app must not change
	// what the suite sees
	presign := "    presign: true\n"
	s3 := startRegistry(t, "s3direct", storageS3direct(e, bucket, "/conf-"+randHex(4))+presign, regOptions{})
	fs := startRegistry(t, "filesystem", storageFilesystem(filepath.Join(t.TempDir(), "fs-storage")), regOptions{})

	// Two processes on one bucket and root, one http.secret.
	root2, secret := "/conf2-"+randHex(4), randHex(32)
	a := startRegistry(t, "s3direct-A", storageS3direct(e, bucket, root2)+presign, regOptions{Secret: secret})
	b := startRegistry(t, "s3direct-B", storageS3direct(e, bucket, root2)+presign, regOptions{Secret: secret})
	proxy := startProxy(t, a, b)

	spread := func(suite string, a0, b0 int) {
		t.Logf("%s: proxy requests per backend so far: %s", suite, proxy.Counts())
		if proxy.Count("s3direct-A", "PATCH") == a0 || proxy.Count("s3direct-B", "PATCH") == b0 {
			t.Errorf("%s: the proxy did not spread PATCH requests over both registries: %s", suite, proxy.Counts())
		}
	}
	runs := []*conformanceRun{
		runConformance(t, "filesystem", fs.URL()),
		runConformance(t, "s3direct", s3.URL()),
		runConformance(t, "s3direct-2proc", "http://"+proxy.Addr),
	}
	spread("conformance", 0, 0)
	a0, b0 := proxy.Count("s3direct-A", "PATCH"), proxy.Count("s3direct-B", "PATCH")
	current := []*conformanceRun{
		runCurrentConformance(t, "filesystem", fs.Addr),
		runCurrentConformance(t, "s3direct", s3.Addr),
		runCurrentConformance(t, "s3direct-2proc", proxy.Addr),
	}
	spread("conformance-current", a0, b0)
	// expected failures on filesystem: distribution v3.1.1 has no referrers
	// API, and stores no sha512 blob
	compareConformance(t, "conformance", minConformancePassed, runs)
	compareConformance(t, "conformance-current", minCurrentPassed, current)
}
