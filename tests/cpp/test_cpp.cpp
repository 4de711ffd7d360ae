// Tests of the C++ binding (include/dlog/dlog.hpp) on every backend URI.
#include <dlog/dlog.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

static int passed, failed;

#define EXPECT(cond)                                                                     \
    do {                                                                                 \
        if (cond) {                                                                      \
            passed++;                                                                    \
        } else {                                                                         \
            failed++;                                                                    \
            std::fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond);      \
        }                                                                                \
    } while (0)

template <typename F> static int error_of(F &&f)
{
    try {
        f();
    } catch (const dlog::Error &e) {
        return e.code();
    }
    return 0;
}

static void run(const std::string &uri)
{
    std::printf("uri %s\n", uri.c_str());
    dlog::Namespace ns(uri);
    ns.create_stream("cpp/events");
    EXPECT(error_of([&] { ns.create_stream("cpp/events"); }) == DLOG_EEXIST);
    EXPECT(error_of([&] { ns.create_stream("../bad"); }) == DLOG_ENAME);
    auto has = [&](const std::string &name) {
        for (const auto &n : ns.streams())
            if (n == name)
                return true;
        return false;
    };
    EXPECT(has("cpp/events")); // the namespace may hold other tests' streams

    dlog::Writer w = ns.writer("cpp/events");
    std::string s = "string payload";
    std::vector<unsigned char> v = {1, 2, 3, 0, 5};
    std::array<char, 3> a = {'x', 'y', 'z'};
    dlog::Dlsn d1 = w.write(std::string_view("view payload"), 1, "k1");
    dlog::Dlsn d2 = w.write(s, 2, "k2");
    dlog::Dlsn d3 = w.write(v, 3);
    dlog::Dlsn d4 = w.write_batch({a, "b1", "b2"}, 4);
    EXPECT(d1 < d2 && d2 < d3 && d3 < d4);
    EXPECT(dlog::Dlsn::parse(d2.str()) == d2);
    EXPECT(ns.last_dlsn("cpp/events") > d4);
    // txids must not go down: the error carries DLOG_ETXID.
    EXPECT(error_of([&] { w.write("late", 1); }) == DLOG_ETXID);

    dlog::Reader r = ns.reader("cpp/events");
    auto recs = r.read(100, 0);
    EXPECT(recs.size() == 6);
    if (recs.size() == 6) {
        EXPECT(recs[0].payload == "view payload" && recs[0].key == "k1" &&
               recs[0].txid == 1);
        EXPECT(recs[0].dlsn == d1);
        EXPECT(recs[1].payload == s);
        EXPECT(recs[2].payload == std::string_view("\x01\x02\x03\x00\x05", 5));
        EXPECT(recs[3].payload == "xyz" && recs[5].payload == "b2" && recs[5].txid == 6);
    }
    EXPECT(r.read(10, 0).empty()); // at the end: timed out, no exception

    // Fencing: an exclusive writer makes the old one fail with DLOG_EFENCED.
    dlog::Writer ex = ns.writer("cpp/events", true);
    EXPECT(ex.epoch() > w.epoch());
    EXPECT(error_of([&] { w.write("old", 100); }) == DLOG_EFENCED);
    ex.write("new", 100);

    // Start positions and key-prefix filters.
    dlog::Reader from = ns.reader("cpp/events", dlog::Start::at(d2));
    // A read stops at a segment's end; "new" is in the exclusive writer's
    // own segment (an epoch bump seals the old one).
    auto r2 = from.read(100, 0);
    for (auto more = from.read(100, 0); !more.empty(); more = from.read(100, 0))
        r2.insert(r2.end(), more.begin(), more.end());
    EXPECT(r2.size() == 6 && r2.front().dlsn == d2 && r2.back().payload == "new");
    dlog::Reader keyed = ns.reader("cpp/events", dlog::Start::head().key_prefix("k2"));
    auto r3 = keyed.read(100, 0);
    EXPECT(r3.size() == 1 && r3[0].payload == s);
    dlog::Reader bytx = ns.reader("cpp/events", dlog::Start::txid(5));
    auto r4 = bytx.read(100, 0);
    EXPECT(!r4.empty() && r4[0].txid == 5);

    // Moves keep one owner; unknown streams throw DLOG_ENOTFOUND.
    dlog::Writer moved = std::move(ex);
    EXPECT(moved.get() != nullptr && ex.get() == nullptr);
    EXPECT(error_of([&] { ns.reader("cpp/missing"); }) == DLOG_ENOTFOUND);
    try {
        ns.writer("cpp/missing");
        EXPECT(false);
    } catch (const dlog::Error &e) {
        EXPECT(std::string(e.name()) == "DLOG_ENOTFOUND");
        EXPECT(std::string(e.what()).find("not found") != std::string::npos);
    }
    moved.close();
    ns.delete_stream("cpp/events");
    EXPECT(!has("cpp/events"));
}

int main()
{
    std::vector<std::string> uris;
    const char *env = std::getenv("DLOG_TEST_URIS");
    char tmpl[] = "/tmp/dlog-cpp-XXXXXX";
    std::string dir;
    if (env != nullptr && *env != '\0') {
        std::string s(env), tok;
        for (size_t i = 0; i <= s.size(); i++) {
            if (i == s.size() || s[i] == ' ') {
                if (!tok.empty())
                    uris.push_back(tok);
                tok.clear();
            } else {
                tok += s[i];
            }
        }
    } else {
        uris = {"mem:", "file:"};
    }
    for (auto &u : uris) {
        if (u == "file:") {
            if (mkdtemp(tmpl) == nullptr)
                return 1;
            dir = tmpl;
            u = "file:" + dir;
        }
        try {
            run(u);
        } catch (const dlog::Error &e) {
            failed++;
            std::fprintf(stderr, "unexpected error on %s: %s\n", u.c_str(), e.what());
        }
    }
    if (!dir.empty())
        std::system(("rm -rf '" + dir + "'").c_str());
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
