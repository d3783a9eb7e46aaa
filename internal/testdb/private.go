package testdb

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Server is a MariaDB server of a test's own, started from Debian's mariadbd on a
// fresh data folder, so that the test can stall it (SIGSTOP) or stop it without
// disturbing anything else on the machine.
type Server struct {
	DSN  string // smsrouter DSN ("mysql:root@tcp(127.0.0.1:PORT)/smsrouter")
	Addr string // 127.0.0.1:PORT
	cmd  *exec.Cmd
	dir  string
	args []string // mariadbd's, for Start
	done chan struct{}
}

// Private starts a MariaDB server for the test and stops it when the test ends. Its
// one database, smsrouter, is empty.
func Private(tb testing.TB) *Server {
	tb.Helper()
	dir := tb.TempDir()
	data := filepath.Join(dir, "data")
	install := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		tb.Fatalf("testdb: mariadb-install-db (Debian's mariadb-server): %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
	s.args = []string{"--no-defaults", "--datadir=" + data, "--user=root",
		"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--socket=" + filepath.Join(dir, "sock"),
		"--pid-file=" + filepath.Join(dir, "pid"), "--skip-log-bin", "--innodb-buffer-pool-size=64M",
		"--innodb-flush-log-at-trx-commit=2", "--log-error=" + filepath.Join(dir, "error.log")}
	tb.Cleanup(s.stop)
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	s.DSN = "mysql:root@tcp(" + s.Addr + ")/smsrouter"
	return s
}

// Start starts the server again after Stop (Private starts it the first time)
// and returns once it answers.
func (s *Server) Start() error {
	if s.done != nil {
		return fmt.Errorf("testdb: mariadbd is running")
	}
	s.cmd = exec.Command("/usr/sbin/mariadbd", s.args...)
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("testdb: start mariadbd: %w", err)
	}
	done := make(chan struct{})
	s.done = done
	go func() { _ = s.cmd.Wait(); close(done) }()
	root := "root@tcp(" + s.Addr + ")/"
	deadline := time.Now().Add(60 * time.Second)
	for {
		db, err := sql.Open("mysql", root)
		if err == nil {
			_, err = db.Exec("CREATE DATABASE IF NOT EXISTS smsrouter CHARACTER SET utf8mb4")
			db.Close()
		}
		if err == nil {
			return nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
			s.done = nil
			return fmt.Errorf("testdb: private mariadbd exited: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
			return fmt.Errorf("testdb: private mariadbd did not come up: %v\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop shuts the server down cleanly (SIGTERM) and waits until it has gone:
// clients then get "connection refused", as from a database that is down.
// Start brings it back with its data.
func (s *Server) Stop() error {
	if s.done == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.done = nil
	return nil
}

// Stall freezes the server process (SIGSTOP): connections stay open, nothing is
// answered, and whatever clients have sent is acted on when it resumes.
func (s *Server) Stall() error { return s.signal(syscall.SIGSTOP) }

// Resume ends a Stall.
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	if err := s.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("testdb: signal mariadbd: %w", err)
	}
	return nil
}

func (s *Server) stop() { _ = s.Stop() }
