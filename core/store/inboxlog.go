package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The inbox log holds the accepted events, next to the store file, in the
// directory PATH_TO_DB + ".inbox": segment files of records appended one
// after the other. Accept appends the event and waits until it is on disk
// (write and fdatasync); the Accepts that arrive while a write is under
// way share the next one. The event's successful executions (MarkDoneOf)
// and its Finish are appended too, without waiting: they are written with
// the next Accept, or by the store's flush at most GroupCommitInterval
// later (group.go).
//
// A log costs one write and one fdatasync per group of events, where the
// bbolt B+tree it replaces rewrote its leaf and overflow pages and synced
// twice (data, then meta page) per commit.
//
// In memory: the events not finished (id → where their record is, and
// their executions done), so a Finish or an IsDone never reads the disk.
// A segment whose events all finished is deleted once every older one is;
// when more than maxClosedSegments wait behind the active one, the live
// events of the oldest (an event retried for hours) are copied forward
// into the active segment and the old file deleted.
//
// Records: payload length (4 bytes, little endian), CRC-32C of the kind
// and payload (4 bytes), kind (1 byte), payload. A record that does not
// check out ends its segment: the torn tail of a crash mid-write (cut off
// when the last segment is opened again) or damage (reported by
// Store.LogDamage).
const (
	recAccept byte = 1 // payload: encodeAccepted
	recFinish byte = 2 // payload: event id
	recDone   byte = 3 // payload: uvarint-prefixed event id and execution id, then 8 bytes of time

	recHeader = 9

	// segmentMax is the size past which the next write starts a new
	// segment.
	segmentMax = 64 << 20
	// maxClosedSegments is how many full segments may wait to be deleted
	// behind the active one before the oldest's live events are copied
	// forward.
	maxClosedSegments = 3
	// gatherDelay: see inboxLog.gather.
	gatherDelay = time.Millisecond
	// maxRecord bounds a record read back (an event is bounded well below
	// it by the webhook's body limit).
	maxRecord = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// logEntry is an event not finished.
type logEntry struct {
	id   string
	seg  uint64 // 0: its record is not written yet
	off  int64  // offset of its Accepted payload in seg
	n    int
	done []doneMark
	gone bool // finished (or its Accept failed)
}

type doneMark struct {
	exec string
	at   []byte
}

type segment struct {
	seq  uint64
	f    *os.File
	live int
}

// logBatch is what the writer writes with one write and one fdatasync.
type logBatch struct {
	buf []byte
	// pend: the entries whose Accepted record is in buf, at off.
	pend []pendRecord
	err  error
	done chan struct{}
}

type pendRecord struct {
	e   *logEntry
	off int // of the payload in the batch
	n   int // payload length
	// prevSeg and prevOff: where a record copied forward was, kept
	// when the copy fails.
	prevSeg uint64
	prevOff int64
}

type inboxLog struct {
	dir string
	// segMax is segmentMax (tests lower it).
	segMax int64
	// gather is how long the writer waits, once woken, for more records
	// to join a write (gatherDelay).
	gather time.Duration

	mu       sync.Mutex
	live     map[string]*logEntry
	doneExec map[string]*logEntry // execution id → its event's entry
	segs     []*segment           // oldest first; the last is written to
	size     int64                // of the last segment
	cur      *logBatch
	spare    [][]byte // written batches' buffers, for the next ones
	broken   bool     // a write failed: the next starts a new segment
	damage   []string
	closed   bool

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

func segName(seq uint64) string { return fmt.Sprintf("%016x.log", seq) }

// openInboxLog opens (or creates) the log in dir and reads it back.
func openInboxLog(dir string) (*inboxLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("inbox log: %w", err)
	}
	l := &inboxLog{dir: dir, segMax: segmentMax, gather: gatherDelay, live: map[string]*logEntry{}, doneExec: map[string]*logEntry{},
		cur: newLogBatch(), kick: make(chan struct{}, 1), stop: make(chan struct{})}
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("inbox log: %w", err)
	}
	var seqs []uint64
	for _, d := range names {
		name := d.Name()
		if !strings.HasSuffix(name, ".log") || len(name) != 20 {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, ".log"), 16, 64)
		if err != nil || seq == 0 {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for i, seq := range seqs {
		if err := l.load(seq, i == len(seqs)-1); err != nil {
			l.closeFiles()
			return nil, err
		}
	}
	if len(l.segs) == 0 {
		if err := l.newSegment(1); err != nil {
			return nil, err
		}
	}
	l.reclaim()
	l.wg.Add(1)
	go l.writer()
	return l, nil
}

// wait returns once the batch is written and synced, with its error.
func (b *logBatch) wait() error {
	<-b.done
	return b.err
}

func newLogBatch() *logBatch { return &logBatch{done: make(chan struct{})} }

// load reads segment seq back into the live events; the last segment is
// cut at its last whole record and written to from there.
func (l *inboxLog) load(seq uint64, last bool) error {
	path := filepath.Join(l.dir, segName(seq))
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("inbox log: %w", err)
	}
	seg := &segment{seq: seq, f: f}
	l.segs = append(l.segs, seg)
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("inbox log: %w", err)
	}
	r := &recordReader{r: io.NewSectionReader(f, 0, st.Size())}
	for {
		kind, payload, off, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !last {
				l.damage = append(l.damage, fmt.Sprintf("%s at byte %d: %v; the records after it in this file are skipped", path, off, err))
			}
			break
		}
		l.replay(seg, kind, payload, off)
	}
	if last {
		l.size = r.pos
		if r.pos < st.Size() {
			// A write cut short by a crash: its event was never
			// acknowledged.
			if err := f.Truncate(r.pos); err != nil {
				return fmt.Errorf("inbox log %s: %w", path, err)
			}
		}
	}
	return nil
}

// replay applies one record read back.
func (l *inboxLog) replay(seg *segment, kind byte, payload []byte, off int64) {
	switch kind {
	case recAccept:
		id, ok := acceptedID(payload)
		if !ok {
			return
		}
		e := &logEntry{id: id, seg: seg.seq, off: off, n: len(payload)}
		if old := l.live[id]; old != nil {
			// Copied forward (or accepted again): the later record wins,
			// with the executions done so far.
			e.done = old.done
			l.segment(old.seg).live--
			for _, d := range old.done {
				l.doneExec[d.exec] = e
			}
		}
		l.live[id] = e
		seg.live++
	case recFinish:
		l.forget(string(payload))
	case recDone:
		event, exec, at, ok := decodeDone(payload)
		if e := l.live[event]; ok && e != nil {
			e.done = append(e.done, doneMark{exec: exec, at: at})
			l.doneExec[exec] = e
		}
	}
}

// forget drops a finished event (mu held).
func (l *inboxLog) forget(id string) *logEntry {
	e := l.live[id]
	if e == nil {
		return nil
	}
	delete(l.live, id)
	for _, d := range e.done {
		delete(l.doneExec, d.exec)
	}
	e.gone = true
	if e.seg != 0 {
		l.segment(e.seg).live--
	}
	return e
}

func (l *inboxLog) segment(seq uint64) *segment {
	for _, s := range l.segs {
		if s.seq == seq {
			return s
		}
	}
	return &segment{} // not reached: an entry's segment stays until it is moved
}

// acceptedID reads the id of an encodeAccepted payload.
func acceptedID(b []byte) (string, bool) {
	_, n := binary.Uvarint(b)
	if n <= 0 {
		return "", false
	}
	id, _, ok := ReadField(b[n:])
	return id, ok
}

func appendDone(buf []byte, event, exec string, at []byte) []byte {
	buf = AppendField(buf, event)
	buf = AppendField(buf, exec)
	return append(buf, at...)
}

func decodeDone(b []byte) (event, exec string, at []byte, ok bool) {
	var f [2]string
	for i := range f {
		if f[i], b, ok = ReadField(b); !ok {
			return "", "", nil, false
		}
	}
	if len(b) != 8 {
		return "", "", nil, false
	}
	return f[0], f[1], append([]byte(nil), b...), true
}

// appendRecord appends one record to buf; fill writes the payload into
// the buffer it is given (so an event is copied once, into the batch).
func appendRecord(buf []byte, kind byte, fill func([]byte) []byte) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, recHeader)...)
	buf = fill(buf)
	rec := buf[start:]
	binary.LittleEndian.PutUint32(rec[0:4], uint32(len(rec)-recHeader+1))
	rec[8] = kind
	binary.LittleEndian.PutUint32(rec[4:8], crc32.Checksum(rec[8:], castagnoli))
	return buf
}

type recordReader struct {
	r   *io.SectionReader
	pos int64
	hdr [recHeader]byte
	buf []byte
}

// next reads the record at pos: its kind, payload and the payload's
// offset; io.EOF at a clean end.
func (r *recordReader) next() (byte, []byte, int64, error) {
	at := r.pos
	if _, err := r.r.ReadAt(r.hdr[:], at); err != nil {
		if err == io.EOF {
			if rest := r.r.Size() - at; rest == 0 {
				return 0, nil, at, io.EOF
			}
			return 0, nil, at, errors.New("record header cut short")
		}
		return 0, nil, at, err
	}
	n := int64(binary.LittleEndian.Uint32(r.hdr[0:4]))
	if n < 1 || n > maxRecord || at+recHeader-1+n > r.r.Size() {
		return 0, nil, at, errors.New("record length out of bounds")
	}
	if cap(r.buf) < int(n-1) {
		r.buf = make([]byte, n-1)
	}
	payload := r.buf[:n-1]
	if _, err := r.r.ReadAt(payload, at+recHeader); err != nil {
		return 0, nil, at, err
	}
	crc := crc32.Update(crc32.Checksum(r.hdr[8:9], castagnoli), castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(r.hdr[4:8]) {
		return 0, nil, at, errors.New("record checksum mismatch")
	}
	r.pos = at + recHeader + n - 1
	return r.hdr[8], payload, at + recHeader, nil
}

// newSegment starts segment seq and makes its name durable.
func (l *inboxLog) newSegment(seq uint64) error {
	path := filepath.Join(l.dir, segName(seq))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("inbox log: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("inbox log: %w", err)
	}
	l.segs = append(l.segs, &segment{seq: seq, f: f})
	l.size = 0
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// accept appends an event and waits until it is on disk.
func (l *inboxLog) accept(a Accepted) error {
	b, err := l.begin(a)
	if err != nil {
		return err
	}
	return b.wait()
}

// begin appends an event to the batch being gathered and returns the
// batch: its done closes once the event is on disk (err nil) or could not
// be written.
func (l *inboxLog) begin(a Accepted) (*logBatch, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("inbox log closed")
	}
	b := l.cur
	e := &logEntry{id: a.ID}
	if old := l.live[a.ID]; old != nil {
		// The same id again: the new record replaces the old one.
		e.done = old.done
		l.forget(a.ID)
		for _, d := range e.done {
			l.doneExec[d.exec] = e
		}
	}
	l.live[a.ID] = e
	off := len(b.buf) + recHeader
	b.buf = appendRecord(b.buf, recAccept, func(buf []byte) []byte { return appendAccepted(buf, a) })
	b.pend = append(b.pend, pendRecord{e: e, off: off, n: len(b.buf) - off})
	l.mu.Unlock()
	l.kickWriter()
	return b, nil
}

// markDone records an execution of a live event as done; false when the
// event is not in the log.
func (l *inboxLog) markDone(eventID, execID string, at []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.live[eventID]
	if e == nil || l.closed {
		return false
	}
	e.done = append(e.done, doneMark{exec: execID, at: at})
	l.doneExec[execID] = e
	l.cur.buf = appendRecord(l.cur.buf, recDone, func(buf []byte) []byte { return appendDone(buf, eventID, execID, at) })
	return true
}

// finish forgets a live event; false when it is not in the log.
func (l *inboxLog) finish(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.forget(id) == nil {
		return false
	}
	l.cur.buf = appendRecord(l.cur.buf, recFinish, func(buf []byte) []byte { return append(buf, id...) })
	return true
}

func (l *inboxLog) isDone(execID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.doneExec[execID] != nil
}

// pending reports whether records wait to be written.
func (l *inboxLog) pending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur.buf) > 0
}

// flush writes the records waiting, and waits.
func (l *inboxLog) flush() error {
	l.mu.Lock()
	if l.closed || len(l.cur.buf) == 0 {
		l.mu.Unlock()
		return nil
	}
	b := l.cur
	l.mu.Unlock()
	l.kickWriter()
	<-b.done
	return b.err
}

func (l *inboxLog) kickWriter() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// writer writes the batches, one at a time: the Accepts that come while
// one is written gather in the next.
func (l *inboxLog) writer() {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			if b := l.writeBatch(); b != nil {
				close(b.done)
			}
			return
		case <-l.kick:
			if l.gather > 0 {
				// Let the Accepts of the moment join the write: one
				// fdatasync for them all costs less CPU than several.
				time.Sleep(l.gather)
			}
			b := l.writeBatch()
			// Before the waiters go on: what they see on disk is
			// maintained (it costs nothing but when a segment goes).
			l.maintain()
			if b != nil {
				close(b.done)
			}
		}
	}
}

// writeBatch writes the current batch, if it holds anything, and syncs;
// it returns the batch (nil when empty), whose waiters the caller
// releases (closing done).
func (l *inboxLog) writeBatch() *logBatch {
	l.mu.Lock()
	b := l.cur
	if len(b.buf) == 0 { // a waiter always adds a record first
		l.mu.Unlock()
		return nil
	}
	l.cur = newLogBatch()
	if n := len(l.spare); n > 0 {
		l.cur.buf, l.spare = l.spare[n-1], l.spare[:n-1]
	}
	var err error
	if l.broken || l.size >= l.segMax {
		if err = l.newSegment(l.segs[len(l.segs)-1].seq + 1); err == nil {
			l.broken = false
		}
	}
	seg := l.segs[len(l.segs)-1]
	at := l.size
	if err == nil {
		for _, p := range b.pend {
			if p.e.gone {
				continue
			}
			if p.e.seg != 0 { // copied forward
				l.segment(p.e.seg).live--
			}
			p.e.seg, p.e.off, p.e.n = seg.seq, at+int64(p.off), p.n
			seg.live++
		}
	}
	l.mu.Unlock()
	if err == nil {
		if _, err = seg.f.WriteAt(b.buf, at); err == nil {
			err = fdatasync(seg.f)
		}
	}
	l.mu.Lock()
	if err != nil {
		err = fmt.Errorf("inbox log %s: %w", filepath.Join(l.dir, segName(seg.seq)), err)
		l.broken = true
		for _, p := range b.pend {
			switch {
			case p.e.gone || p.e.seg != seg.seq:
			case p.prevSeg != 0:
				// A copy forward: the record stays where it was.
				seg.live--
				p.e.seg, p.e.off = p.prevSeg, p.prevOff
				l.segment(p.prevSeg).live++
			default:
				// Not on disk: the Accept fails (the sender gets an
				// error, not a 2xx).
				l.forget(p.e.id)
			}
		}
	} else {
		l.size = at + int64(len(b.buf))
	}
	if cap(b.buf) <= 4<<20 && len(l.spare) < 2 {
		l.spare = append(l.spare, b.buf[:0])
	}
	l.mu.Unlock()
	// Its waiters may keep the batch (an event's Stored) long after: it
	// keeps only done and err.
	b.buf, b.pend = nil, nil
	b.err = err
	return b
}

// maintain deletes the oldest segments once their events all finished,
// and copies the live events of the oldest forward when too many
// segments wait.
func (l *inboxLog) maintain() {
	l.mu.Lock()
	l.reclaim()
	if len(l.segs)-1 <= maxClosedSegments {
		l.mu.Unlock()
		return
	}
	old := l.segs[0]
	var move []*logEntry
	for _, e := range l.live {
		if e.seg == old.seq {
			move = append(move, e)
		}
	}
	l.mu.Unlock()
	slices.SortFunc(move, func(a, b *logEntry) int { return strings.Compare(a.id, b.id) })
	type copied struct {
		e       *logEntry
		payload []byte
	}
	var cs []copied
	for _, e := range move {
		p := make([]byte, e.n)
		if _, err := old.f.ReadAt(p, e.off); err != nil {
			return // tried again after the next write
		}
		cs = append(cs, copied{e, p})
	}
	l.mu.Lock()
	b := l.cur
	for _, c := range cs {
		if c.e.gone || c.e.seg != old.seq {
			continue
		}
		off := len(b.buf) + recHeader
		b.buf = appendRecord(b.buf, recAccept, func(buf []byte) []byte { return append(buf, c.payload...) })
		b.pend = append(b.pend, pendRecord{e: c.e, off: off, n: len(c.payload), prevSeg: c.e.seg, prevOff: c.e.off})
		for _, d := range c.e.done {
			b.buf = appendRecord(b.buf, recDone, func(buf []byte) []byte { return appendDone(buf, c.e.id, d.exec, d.at) })
		}
	}
	l.mu.Unlock()
	// The copies go with the Accepts that came meanwhile.
	if b := l.writeBatch(); b != nil {
		close(b.done)
	}
	l.mu.Lock()
	l.reclaim()
	l.mu.Unlock()
}

// reclaim deletes the oldest segments whose events all finished (mu
// held). Older segments go first: a Finish written in a segment may be
// all that keeps an event of an older one from being replayed.
func (l *inboxLog) reclaim() {
	for len(l.segs) > 1 && l.segs[0].live <= 0 {
		s := l.segs[0]
		s.f.Close()
		if err := os.Remove(filepath.Join(l.dir, segName(s.seq))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return
		}
		l.segs = l.segs[1:]
	}
}

// unfinished returns the live events' records, by id.
func (l *inboxLog) unfinished() ([]Accepted, error) {
	if err := l.flush(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	type loc struct {
		id  string
		f   *os.File
		off int64
		n   int
	}
	var locs []loc
	for _, e := range l.live {
		if e.seg != 0 {
			locs = append(locs, loc{e.id, l.segment(e.seg).f, e.off, e.n})
		}
	}
	l.mu.Unlock()
	slices.SortFunc(locs, func(a, b loc) int { return strings.Compare(a.id, b.id) })
	out := make([]Accepted, 0, len(locs))
	for _, x := range locs {
		p := make([]byte, x.n)
		if _, err := x.f.ReadAt(p, x.off); err != nil {
			if errors.Is(err, os.ErrClosed) {
				continue // finished meanwhile, its segment deleted
			}
			return nil, fmt.Errorf("inbox log: %w", err)
		}
		a, err := decodeAccepted(p)
		if err != nil {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// close writes what waits and closes the files.
func (l *inboxLog) close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true // no more records; the writer writes those waiting
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeFiles()
}

func (l *inboxLog) closeFiles() error {
	var err error
	for _, s := range l.segs {
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
