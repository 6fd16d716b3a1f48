package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/httpapi"
)

// binary is the cairn executable built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cairn")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cairn:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testToken = "cairn_e2e-test-token-0123456789abcdef"

// proc is a running `cairn serve`.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string
	dataDir string
	client  *httpapi.Client
	stderr  *lockedBuffer
	exited  chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServer runs the real binary on a random port over dataDir and waits
// until it listens.
func startServer(t *testing.T, dataDir string, extraArgs ...string) *proc {
	t.Helper()
	return startServerEnv(t, dataDir, os.Environ(), extraArgs...)
}

// startServerEnv is startServer with the process environment env (plus the
// bootstrap token).
func startServerEnv(t *testing.T, dataDir string, env []string, extraArgs ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}, extraArgs...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(slices.Clip(env), "CAIRN_BOOTSTRAP_TOKEN="+testToken)
	p := &proc{t: t, cmd: cmd, dataDir: dataDir}
	p.addr, p.stderr, p.exited = launch(t, cmd, "cairn listening")
	p.client = &httpapi.Client{BaseURL: p.addr, Token: testToken}
	t.Cleanup(p.kill)
	return p
}

// kill stops the process with SIGKILL (no cleanup of any kind).
// launch starts cmd and waits for the log line msg that carries its
// listening address; it fails the test if the process exits or does not
// get there in 30 s. stderr collects the process's log; exited closes when
// it has exited.
func launch(t *testing.T, cmd *exec.Cmd, msg string) (addr string, stderr *lockedBuffer, exited chan struct{}) {
	t.Helper()
	pr, pw := io.Pipe()
	stderr, exited = &lockedBuffer{}, make(chan struct{})
	cmd.Stderr = io.MultiWriter(pw, stderr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		pw.Close()
		close(exited)
	}()
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == msg {
				addrCh <- line.Addr
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case addr = <-addrCh:
	case <-exited:
		t.Fatalf("%s exited before listening:\n%s", cmd.Args[1], stderr)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("%s did not start:\n%s", cmd.Args[1], stderr)
	}
	return addr, stderr, exited
}

func (p *proc) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// stop asks for a graceful shutdown and waits for it.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.kill()
		p.t.Fatalf("graceful shutdown timed out:\n%s", p.stderr)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("cairn exited with %d:\n%s", code, p.stderr)
	}
}

// cli runs a cairn client command against the server and returns stdout.
func (p *proc) cli(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "CAIRN_SERVER="+p.addr, "CAIRN_TOKEN="+testToken)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.String(), err
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
