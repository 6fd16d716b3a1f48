package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/cairn-audit/cairn"
)

// maxResponse bounds a witness response: a few cosignature lines.
const maxResponse = 64 << 10

// UserAgent identifies Cairn to witnesses.
const UserAgent = "Cairn-Witness-Client/1.0"

// SizeConflict is the cause of an EConflict from AddCheckpoint: the
// witness's latest size for the log is not the "old" size Cairn sent
// (HTTP 409). Resubmit with a consistency proof from Size.
type SizeConflict struct {
	Size int64
}

func (e *SizeConflict) Error() string {
	return fmt.Sprintf("witness's latest size is %d", e.Size)
}

// AddCheckpoint submits a signed checkpoint to the witness at prefix with
// C2SP tlog-witness add-checkpoint:
//
//	POST <prefix>/add-checkpoint
//	old <old>\n
//	<base64 consistency proof hash>\n ...
//	\n
//	<signed checkpoint>
//
// and returns the response body: the witness's cosignature line(s), not yet
// verified.
//
// Errors, by the witness's answer: EConflict wrapping a *SizeConflict
// (409: the witness's latest size differs from old); EIntegrity (422: the
// proof does not verify, or the same size has another root); ENotFound
// (404: the witness does not know the log); EForbidden (403: it did not
// accept the log's signature); EInvalid (400); EUnavailable for network
// errors, timeouts, 429 and 5xx; EInternal for any other status.
func AddCheckpoint(ctx context.Context, hc *http.Client, prefix string, old int64, proof [][32]byte, checkpoint []byte) ([]byte, error) {
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", old)
	for _, h := range proof {
		body.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		body.WriteByte('\n')
	}
	body.WriteByte('\n')
	body.Write(checkpoint)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(prefix, "/")+"/add-checkpoint", &body)
	if err != nil {
		return nil, &cairn.Error{Code: cairn.EInvalid, Message: "bad witness URL", Err: err}
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("User-Agent", UserAgent)
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &cairn.Error{Code: cairn.EUnavailable, Message: "cannot reach the witness", Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, &cairn.Error{Code: cairn.EUnavailable, Message: "reading the witness's response failed", Err: err}
	}
	if len(data) > maxResponse {
		return nil, cairn.Errorf(cairn.EInvalid, "the witness's response is larger than %d bytes", maxResponse)
	}
	status := resp.StatusCode
	switch {
	case status == http.StatusOK:
		return data, nil
	case status == http.StatusConflict:
		size, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err != nil || size < 0 {
			return nil, cairn.Errorf(cairn.EInternal, "the witness answered 409 without a tree size")
		}
		return nil, &cairn.Error{Code: cairn.EConflict, Message: fmt.Sprintf("the witness's latest size is %d, not %d", size, old),
			Err: &SizeConflict{Size: size}}
	case status == http.StatusUnprocessableEntity:
		return nil, cairn.Errorf(cairn.EIntegrity, "the witness rejected the checkpoint: the consistency proof does not verify or the tree forks (HTTP 422)")
	case status == http.StatusNotFound:
		return nil, cairn.Errorf(cairn.ENotFound, "the witness does not know this log (HTTP 404)")
	case status == http.StatusForbidden:
		return nil, cairn.Errorf(cairn.EForbidden, "the witness did not accept the log's signature (HTTP 403)")
	case status == http.StatusBadRequest:
		return nil, cairn.Errorf(cairn.EInvalid, "the witness rejected the request as malformed (HTTP 400)")
	case status == http.StatusTooManyRequests || status >= 500:
		return nil, cairn.Errorf(cairn.EUnavailable, "the witness is unavailable (HTTP %d)", status)
	default:
		return nil, cairn.Errorf(cairn.EInternal, "the witness answered HTTP %d", status)
	}
}

// sizeConflict returns the witness's size from an AddCheckpoint error.
func sizeConflict(err error) (int64, bool) {
	var sc *SizeConflict
	if errors.As(err, &sc) {
		return sc.Size, true
	}
	return 0, false
}
