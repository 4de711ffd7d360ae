// dlog C++ binding: a header-only RAII wrapper over <dlog/dlog.h>.
//
//   dlog::Namespace ns("file:/tmp/dl");
//   ns.create_stream("orders");
//   dlog::Writer w = ns.writer("orders");
//   dlog::Dlsn at = w.write("hello");
//   dlog::Reader r = ns.reader("orders");
//   for (const dlog::Record &rec : r.read(100, 0)) { ... }
//
// Errors are thrown as dlog::Error, which carries the dlog_err code and the
// library's message. Handles are move-only and close themselves. Byte
// inputs are taken as std::string_view or dlog::Bytes (a pointer and a
// length, constructible from any contiguous container of bytes), so no copy
// is made before the library copies the record. Needs C++17.
#ifndef DLOG_DLOG_HPP
#define DLOG_DLOG_HPP

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <dlog/dlog.h>

namespace dlog
{

// An error from the library: code() is the dlog_err value.
class Error : public std::runtime_error
{
  public:
    Error(int code, const std::string &what)
        : std::runtime_error(what + ": " + dlog_strerror(code)), code_(code)
    {
    }
    int code() const noexcept { return code_; }
    const char *name() const noexcept { return dlog_errname(code_); }

  private:
    int code_;
};

namespace detail
{
inline void check(int rv, const char *what, const char *msg)
{
    if (rv < 0)
        throw Error(rv, std::string(what) +
                            (msg && *msg ? std::string(" (") + msg + ")" : ""));
}
} // namespace detail

// A read-only view of bytes, like std::span<const std::byte>.
struct Bytes {
    const void *data = nullptr;
    size_t size = 0;
    Bytes() = default;
    Bytes(const void *p, size_t n) : data(p), size(n) {}
    Bytes(std::string_view s) : data(s.data()), size(s.size()) {}
    Bytes(const char *s) : Bytes(std::string_view(s)) {}
    Bytes(const std::string &s) : data(s.data()), size(s.size()) {}
    template <typename C, typename = decltype(std::declval<const C &>().data()),
              typename = decltype(std::declval<const C &>().size())>
    Bytes(const C &c) : data(c.data()), size(c.size() * sizeof(*c.data()))
    {
    }
};

// A position: (segment, entry, slot), ordered, printable as "seg/entry/slot".
struct Dlsn {
    dlog_dlsn d{0, 0, 0};
    Dlsn() = default;
    Dlsn(dlog_dlsn x) : d(x) {}
    Dlsn(uint64_t seg, uint64_t entry, uint32_t slot) : d{seg, entry, slot} {}
    static Dlsn parse(const std::string &s)
    {
        Dlsn out;
        detail::check(dlog_dlsn_parse(s.c_str(), &out.d), "parse DLSN", s.c_str());
        return out;
    }
    std::string str() const
    {
        char buf[DLOG_DLSN_STRLEN];
        return dlog_dlsn_format(d, buf, sizeof buf);
    }
    friend bool operator==(const Dlsn &a, const Dlsn &b)
    {
        return dlog_dlsn_cmp(a.d, b.d) == 0;
    }
    friend bool operator!=(const Dlsn &a, const Dlsn &b) { return !(a == b); }
    friend bool operator<(const Dlsn &a, const Dlsn &b)
    {
        return dlog_dlsn_cmp(a.d, b.d) < 0;
    }
    friend bool operator<=(const Dlsn &a, const Dlsn &b)
    {
        return dlog_dlsn_cmp(a.d, b.d) <= 0;
    }
    friend bool operator>(const Dlsn &a, const Dlsn &b) { return b < a; }
    friend bool operator>=(const Dlsn &a, const Dlsn &b) { return b <= a; }
};

// A record as read: the views point into the reader's buffer and stay valid
// until the reader's next read() or its destruction.
struct Record {
    std::string_view payload;
    std::string_view key;
    uint64_t txid = 0;
    Dlsn dlsn;
};

class Writer
{
  public:
    Writer() = default;
    explicit Writer(dlog_writer *w) : w_(w) {}
    Writer(Writer &&o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
    Writer &operator=(Writer &&o) noexcept
    {
        if (this != &o) {
            reset();
            w_ = std::exchange(o.w_, nullptr);
        }
        return *this;
    }
    Writer(const Writer &) = delete;
    Writer &operator=(const Writer &) = delete;
    ~Writer() { reset(); }

    // Writes one record and waits until it is durable; returns its DLSN.
    Dlsn write(Bytes payload, uint64_t txid = 0, Bytes key = {})
    {
        dlog_record rec{};
        rec.payload = payload.data;
        rec.len = payload.size;
        rec.key = key.data;
        rec.key_len = key.size;
        rec.txid = txid;
        dlog_dlsn at{};
        detail::check(dlog_write_sync(w_, &rec, 1, &at), "write", dlog_writer_errmsg(w_));
        return at;
    }
    // Writes several records as one write; returns the first DLSN.
    Dlsn write_batch(const std::vector<Bytes> &payloads, uint64_t first_txid = 0)
    {
        std::vector<dlog_record> recs(payloads.size());
        for (size_t i = 0; i < payloads.size(); i++) {
            recs[i].payload = payloads[i].data;
            recs[i].len = payloads[i].size;
            recs[i].txid = first_txid ? first_txid + i : 0;
        }
        dlog_dlsn at{};
        detail::check(dlog_write_sync(w_, recs.data(), recs.size(), &at), "write",
                      dlog_writer_errmsg(w_));
        return at;
    }
    void flush()
    {
        detail::check(dlog_writer_flush(w_), "flush", dlog_writer_errmsg(w_));
    }
    uint64_t epoch() const { return dlog_writer_epoch(w_); }
    dlog_writer *get() const noexcept { return w_; }

    // Flushes and closes; throws if the final flush failed.
    void close()
    {
        if (w_ != nullptr) {
            int rv = dlog_writer_close(std::exchange(w_, nullptr));
            detail::check(rv, "close writer", nullptr);
        }
    }

  private:
    void reset() noexcept
    {
        if (w_ != nullptr)
            dlog_writer_close(std::exchange(w_, nullptr));
    }
    dlog_writer *w_ = nullptr;
};

class Reader
{
  public:
    Reader() = default;
    explicit Reader(dlog_reader *r) : r_(r) {}
    Reader(Reader &&o) noexcept
        : r_(std::exchange(o.r_, nullptr)), buf_(std::move(o.buf_))
    {
    }
    Reader &operator=(Reader &&o) noexcept
    {
        if (this != &o) {
            reset();
            r_ = std::exchange(o.r_, nullptr);
            buf_ = std::move(o.buf_);
        }
        return *this;
    }
    Reader(const Reader &) = delete;
    Reader &operator=(const Reader &) = delete;
    ~Reader() { reset(); }

    // Up to max records; waits up to timeout_ms for the first (<0: forever).
    // An empty vector means the wait timed out.
    std::vector<Record> read(size_t max = 1024, int timeout_ms = -1)
    {
        buf_.resize(max);
        int n = dlog_read(r_, buf_.data(), max, timeout_ms);
        std::vector<Record> out;
        if (n == DLOG_ETIMEDOUT)
            return out;
        detail::check(n, "read", dlog_reader_errmsg(r_));
        out.reserve(static_cast<size_t>(n));
        for (int i = 0; i < n; i++) {
            const dlog_record &c = buf_[static_cast<size_t>(i)];
            Record r;
            r.payload = std::string_view(static_cast<const char *>(c.payload), c.len);
            r.key = c.key_len
                        ? std::string_view(static_cast<const char *>(c.key), c.key_len)
                        : std::string_view();
            r.txid = c.txid;
            r.dlsn = c.dlsn;
            out.push_back(r);
        }
        return out;
    }
    Dlsn position() const { return dlog_reader_position(r_); }
    dlog_reader *get() const noexcept { return r_; }

  private:
    void reset() noexcept
    {
        if (r_ != nullptr)
            dlog_reader_close(std::exchange(r_, nullptr));
    }
    dlog_reader *r_ = nullptr;
    std::vector<dlog_record> buf_;
};

// Where a reader starts.
struct Start {
    dlog_reader_options o;
    Start() { dlog_reader_options_init(&o); }
    static Start head() { return Start(); }
    static Start tail()
    {
        Start s;
        s.o.start = DLOG_START_TAIL;
        return s;
    }
    static Start at(Dlsn d)
    {
        Start s;
        s.o.start = DLOG_START_DLSN;
        s.o.start_dlsn = d.d;
        return s;
    }
    static Start txid(uint64_t t)
    {
        Start s;
        s.o.start = DLOG_START_TXID;
        s.o.start_txid = t;
        return s;
    }
    // Only records whose key starts with prefix (the view must outlive reader()).
    Start &key_prefix(std::string_view p)
    {
        o.key_prefix = p.data();
        o.key_prefix_len = p.size();
        return *this;
    }
};

class Namespace
{
  public:
    explicit Namespace(const std::string &uri, const dlog_options *opts = nullptr)
    {
        char err[DLOG_ERRMSG_LEN] = "";
        detail::check(dlog_open(uri.c_str(), opts, &ns_, err), ("open " + uri).c_str(),
                      err);
    }
    Namespace(Namespace &&o) noexcept : ns_(std::exchange(o.ns_, nullptr)) {}
    Namespace &operator=(Namespace &&o) noexcept
    {
        if (this != &o) {
            if (ns_ != nullptr)
                dlog_close(ns_);
            ns_ = std::exchange(o.ns_, nullptr);
        }
        return *this;
    }
    Namespace(const Namespace &) = delete;
    Namespace &operator=(const Namespace &) = delete;
    ~Namespace()
    {
        if (ns_ != nullptr)
            dlog_close(ns_);
    }

    void create_stream(const std::string &name, const dlog_stream_config *cfg = nullptr)
    {
        detail::check(dlog_stream_create(ns_, name.c_str(), cfg), "create stream",
                      dlog_errmsg(ns_));
    }
    void delete_stream(const std::string &name)
    {
        detail::check(dlog_stream_delete(ns_, name.c_str()), "delete stream",
                      dlog_errmsg(ns_));
    }
    std::vector<std::string> streams()
    {
        char **names = nullptr;
        size_t n = 0;
        detail::check(dlog_stream_list(ns_, &names, &n), "list streams",
                      dlog_errmsg(ns_));
        std::vector<std::string> out(names, names + n);
        dlog_stream_list_free(names);
        return out;
    }
    void truncate(const std::string &name, Dlsn below)
    {
        detail::check(dlog_stream_truncate(ns_, name.c_str(), below.d), "truncate",
                      dlog_errmsg(ns_));
    }
    Dlsn last_dlsn(const std::string &name)
    {
        dlog_dlsn d{};
        detail::check(dlog_stream_last_dlsn(ns_, name.c_str(), &d), "last DLSN",
                      dlog_errmsg(ns_));
        return d;
    }
    Writer writer(const std::string &stream, bool exclusive = false)
    {
        dlog_writer_options o;
        dlog_writer_options_init(&o);
        o.mode = exclusive ? DLOG_WRITER_EXCLUSIVE : DLOG_WRITER_SHARED;
        dlog_writer *w = nullptr;
        detail::check(dlog_writer_open(ns_, stream.c_str(), &o, &w), "open writer",
                      dlog_errmsg(ns_));
        return Writer(w);
    }
    Reader reader(const std::string &stream, const Start &start = Start::head())
    {
        dlog_reader *r = nullptr;
        detail::check(dlog_reader_open(ns_, stream.c_str(), &start.o, &r), "open reader",
                      dlog_errmsg(ns_));
        return Reader(r);
    }
    dlog_ns *get() const noexcept { return ns_; }

  private:
    dlog_ns *ns_ = nullptr;
};

} // namespace dlog

#endif // DLOG_DLOG_HPP
