package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-audit/cairn/httpapi"
)

// credentials are what cairn login stores: the token the client commands
// use when neither --token nor CAIRN_TOKEN is given.
type credentials struct {
	Server string `json:"server"`
	Org    string `json:"org"`
	Token  string `json:"token"`
}

// credentialsPath is <user config dir>/cairn/credentials.json
// ($XDG_CONFIG_HOME or ~/.config on Linux).
func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "cairn", "credentials.json"), nil
}

// loadCredentials returns the stored credentials, nil if there are none.
func loadCredentials() (*credentials, error) {
	path, err := credentialsPath()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// saveCredentials writes the credentials file with mode 0600 (its
// directory 0700), replacing it atomically.
func saveCredentials(c *credentials) (string, error) {
	path, err := credentialsPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}

// runLogin logs in as a local user (password from stdin) or stores a
// given API key, after checking it with the server.
func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	user := fs.String("username", "", "local user to log in as; the password is read from stdin")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cairn login --username NAME [flags] < password\n       cairn login --token KEY [flags]\n\n"+
			"Stores a session token (or the given key) for the other client commands, in a file of mode 0600\n"+
			"under the user's config directory.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if (*user == "") == (cf.token == "") {
		return usageError{"give either --username (password on stdin) or --token"}
	}
	c := &httpapi.Client{BaseURL: cf.server, Token: cf.token}
	if *user != "" {
		pw, err := readSecret()
		if err != nil {
			return err
		}
		var s httpapi.Session
		if _, err := c.Do(ctx, "POST", orgPath(cf.org)+"/login", nil,
			strings.NewReader(mustJSON(map[string]string{"username": *user, "password": pw})), nil, &s); err != nil {
			return err
		}
		c.Token = s.Token
	}
	var who httpapi.Whoami
	if _, err := c.Do(ctx, "GET", "/api/v1/whoami", nil, nil, nil, &who); err != nil {
		return err
	}
	path, err := saveCredentials(&credentials{Server: cf.server, Org: cf.org, Token: c.Token})
	if err != nil {
		return err
	}
	name := "key " + who.Key.Name
	if who.Principal != nil {
		name = who.Principal.Ref
	}
	fmt.Fprintf(stdout, "logged in to %s as %s (org %s); token stored in %s\n", cf.server, name, who.Org, path)
	return nil
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
