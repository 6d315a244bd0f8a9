/* The mount's C fast path: LOOKUP and READ of version files whose answers Python gave once.
 *
 * WHY: a cold epoch over a small-file dataset (page cache dropped, blobs in our cache) costs
 * one LOOKUP and one READ per file. Answered in Python, each crosses the GIL on a libfuse
 * worker thread (a ctypes callback: thread state, GIL hand-offs with the other workers), and
 * 20k x 4 KiB files read by 4 processes ran at 0.12x local disk although the daemon did
 * nothing but stat a table entry and read a cached file. Version paths name immutable bytes,
 * so what Python answered once stays true: fastpath.py records it here and libfuse's worker
 * threads answer the next LOOKUP and READ of that path in C, without the GIL.
 *
 * What is kept here, per path (a hash table under a read-write lock):
 *   - the stat Python's getattr returned (recorded by Versions.getattr), and
 *   - for an entry whose bytes are one whole cached object that Python verified (its seal,
 *     cache/seals.py), the object's path and its fingerprint at that check: device, inode,
 *     size and ctime. A READ opens the object, compares an fstat with the fingerprint (any
 *     write, truncate, chmod or replacement moves ctime or the inode, and ctime cannot be set
 *     back), and only then reads: the same check Python's held handles make (handles.py).
 * Anything else - a path never answered by Python, an object evicted, replaced or changed, a
 * short read - goes to Python's own callback (the fallback), which fetches, re-checks or
 * refuses as it always did. A wrong byte is never served from here: at worst Python answers.
 *
 * The libfuse ABI used: the high-level getattr and read_buf signatures (unchanged in libfuse
 * 3.0-3.18) and one struct fuse_bufvec of one memory buffer. struct fuse_buf is laid out as
 * libfuse 3.17-3.18 have it; 3.0-3.16 lack its last field (mem_size), which a one-buffer
 * vector never makes them read. fastpath.py loads this only for the libfuse versions
 * libfuse_abi.py knows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define AFS_FASTPATH_ABI 1

struct afs_attr {
    uint32_t mode, nlink, uid, gid;
    int64_t size, blocks, blksize;
    uint64_t ino;
    int64_t atime_ns, mtime_ns, ctime_ns;
};

struct afs_blob_check {
    uint64_t dev, ino;
    int64_t size, ctime_ns;
};

struct afs_fuse_buf {
    size_t size;
    int flags; /* enum fuse_buf_flags: 0 = memory */
    void *mem;
    int fd;
    off_t pos;
    size_t mem_size; /* libfuse >= 3.17 only; never read by older ones (count is 1) */
};

struct afs_fuse_bufvec {
    size_t count, idx, off;
    struct afs_fuse_buf buf[1];
};

typedef int (*getattr_fn)(const char *, struct stat *, void *);
typedef int (*read_buf_fn)(const char *, struct afs_fuse_bufvec **, size_t, off_t, void *);

struct entry {
    uint64_t hash;
    char *path;
    int has_attr;
    struct afs_attr attr;
    char *blob; /* NULL: no verified whole object known */
    struct afs_blob_check check;
    atomic_int touched;
};

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static struct entry **slots;
static size_t nslots, nentries, limit = (size_t)1 << 18;
static getattr_fn py_getattr;
static read_buf_fn py_read_buf;
static atomic_ullong n_lookups, n_reads, n_bytes, n_fallbacks;

int afs_abi(void) { return AFS_FASTPATH_ABI; }

void afs_set_fallbacks(getattr_fn getattr, read_buf_fn read_buf)
{
    py_getattr = getattr;
    py_read_buf = read_buf;
}

void afs_set_limit(size_t entries) { limit = entries; }

static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Under the lock (either kind). */
static struct entry *find(const char *path, uint64_t h)
{
    if (!nslots)
        return NULL;
    for (size_t i = h & (nslots - 1);; i = (i + 1) & (nslots - 1)) {
        struct entry *e = slots[i];
        if (!e)
            return NULL;
        if (e->hash == h && strcmp(e->path, path) == 0)
            return e;
    }
}

/* Under the write lock: slots at most half full, so probes stay short and always end. */
static int grow(void)
{
    size_t n = nslots ? nslots * 2 : 1024;
    struct entry **fresh = calloc(n, sizeof *fresh);
    if (!fresh)
        return -ENOMEM;
    for (size_t i = 0; i < nslots; i++) {
        struct entry *e = slots[i];
        if (!e)
            continue;
        size_t j = e->hash & (n - 1);
        while (fresh[j])
            j = (j + 1) & (n - 1);
        fresh[j] = e;
    }
    free(slots);
    slots = fresh;
    nslots = n;
    return 0;
}

/* Under the write lock: the entry for path, made if new (NULL when full or out of memory). */
static struct entry *entry_for(const char *path)
{
    uint64_t h = hash_of(path);
    struct entry *e = find(path, h);
    if (e)
        return e;
    if (nentries >= limit)
        return NULL;
    if ((nentries + 1) * 2 > nslots && grow() != 0)
        return NULL;
    e = calloc(1, sizeof *e);
    if (!e || !(e->path = strdup(path))) {
        free(e);
        return NULL;
    }
    e->hash = h;
    size_t i = h & (nslots - 1);
    while (slots[i])
        i = (i + 1) & (nslots - 1);
    slots[i] = e;
    nentries++;
    return e;
}

int afs_put_attr(const char *path, const struct afs_attr *attr)
{
    pthread_rwlock_wrlock(&lock);
    struct entry *e = entry_for(path);
    if (e) {
        e->attr = *attr;
        e->has_attr = 1;
    }
    pthread_rwlock_unlock(&lock);
    return e ? 0 : -ENOSPC;
}

int afs_put_blob(const char *path, const char *blob, const struct afs_blob_check *check)
{
    char *copy = strdup(blob);
    if (!copy)
        return -ENOMEM;
    pthread_rwlock_wrlock(&lock);
    struct entry *e = entry_for(path);
    char *old = NULL;
    if (e) {
        old = e->blob; /* readers copy it under the read lock: free after the write lock */
        e->blob = copy;
        e->check = *check;
    }
    pthread_rwlock_unlock(&lock);
    free(e ? old : copy);
    return e ? 0 : -ENOSPC;
}

size_t afs_entries(void)
{
    pthread_rwlock_rdlock(&lock);
    size_t n = nentries;
    pthread_rwlock_unlock(&lock);
    return n;
}

void afs_clear(void)
{
    pthread_rwlock_wrlock(&lock);
    for (size_t i = 0; i < nslots; i++) {
        if (slots[i]) {
            free(slots[i]->path);
            free(slots[i]->blob);
            free(slots[i]);
        }
    }
    free(slots);
    slots = NULL;
    nslots = nentries = 0;
    pthread_rwlock_unlock(&lock);
}

void afs_counters(uint64_t out[4])
{
    out[0] = atomic_load(&n_lookups);
    out[1] = atomic_load(&n_reads);
    out[2] = atomic_load(&n_bytes);
    out[3] = atomic_load(&n_fallbacks);
}

/* The objects read since the last call, as NUL-terminated paths in out (at most cap bytes),
 * from slot *cursor on; *cursor is left where the next call goes on (nslots: done). Their
 * reads count as uses for the cache's LRU (Python touches their seals, in batches). */
size_t afs_take_touched(char *out, size_t cap, size_t *cursor)
{
    size_t used = 0;
    pthread_rwlock_rdlock(&lock);
    size_t i = *cursor;
    for (; i < nslots; i++) {
        struct entry *e = slots[i];
        if (!e || !e->blob || !atomic_load_explicit(&e->touched, memory_order_relaxed))
            continue;
        size_t n = strlen(e->blob) + 1;
        if (used + n > cap)
            break;
        memcpy(out + used, e->blob, n);
        used += n;
        atomic_store_explicit(&e->touched, 0, memory_order_relaxed);
    }
    *cursor = i >= nslots ? (size_t)-1 : i;
    pthread_rwlock_unlock(&lock);
    return used;
}

static void fill_time(struct timespec *ts, int64_t ns)
{
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
}

int afs_getattr(const char *path, struct stat *st, void *fi)
{
    struct afs_attr a;
    int hit = 0;
    if (path) {
        uint64_t h = hash_of(path);
        pthread_rwlock_rdlock(&lock);
        struct entry *e = find(path, h);
        if (e && e->has_attr) {
            a = e->attr;
            hit = 1;
        }
        pthread_rwlock_unlock(&lock);
    }
    if (!hit) {
        atomic_fetch_add_explicit(&n_fallbacks, 1, memory_order_relaxed);
        return py_getattr ? py_getattr(path, st, fi) : -ENOENT;
    }
    memset(st, 0, sizeof *st);
    st->st_mode = a.mode;
    st->st_nlink = a.nlink;
    st->st_uid = a.uid;
    st->st_gid = a.gid;
    st->st_size = a.size;
    st->st_blocks = a.blocks;
    st->st_blksize = a.blksize;
    st->st_ino = a.ino;
    fill_time(&st->st_atim, a.atime_ns);
    fill_time(&st->st_mtim, a.mtime_ns);
    fill_time(&st->st_ctim, a.ctime_ns);
    atomic_fetch_add_explicit(&n_lookups, 1, memory_order_relaxed);
    return 0;
}

#define BLOB_MAX 4096

/* Bytes [off, off+size) of path's verified object, or -EAGAIN: Python answers instead. */
static int read_cached(const char *path, struct afs_fuse_bufvec **bufp, size_t size, off_t off)
{
    char blob[BLOB_MAX];
    struct afs_blob_check check;
    struct entry *e;
    uint64_t h = hash_of(path);
    pthread_rwlock_rdlock(&lock);
    e = find(path, h);
    int known = e && e->blob && strlen(e->blob) < BLOB_MAX;
    if (known) {
        strcpy(blob, e->blob);
        check = e->check;
        if (!atomic_load_explicit(&e->touched, memory_order_relaxed))
            atomic_store_explicit(&e->touched, 1, memory_order_relaxed);
    }
    pthread_rwlock_unlock(&lock);
    if (!known || off < 0)
        return -EAGAIN;
    int fd = open(blob, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -EAGAIN; /* evicted meanwhile: Python fetches it again */
    struct stat s;
    if (fstat(fd, &s) != 0 || (uint64_t)s.st_dev != check.dev || (uint64_t)s.st_ino != check.ino ||
        s.st_size != check.size ||
        (int64_t)s.st_ctim.tv_sec * 1000000000 + s.st_ctim.tv_nsec != check.ctime_ns) {
        close(fd); /* changed since its check: Python re-checks (and drops) it */
        return -EAGAIN;
    }
    size_t n = off >= check.size ? 0 : (size_t)(check.size - off);
    if (n > size)
        n = size;
    struct afs_fuse_bufvec *v = calloc(1, sizeof *v);
    void *mem = n ? malloc(n) : NULL;
    if (!v || (n && !mem)) {
        close(fd);
        free(v);
        free(mem);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)mem + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) { /* shorter than its check said: never serve a guess */
        free(mem);
        free(v);
        return -EAGAIN;
    }
    v->count = 1;
    v->buf[0].size = n;
    v->buf[0].mem = mem;
    v->buf[0].mem_size = n;
    v->buf[0].fd = -1;
    *bufp = v;
    atomic_fetch_add_explicit(&n_reads, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_bytes, n, memory_order_relaxed);
    return 0;
}

int afs_read_buf(const char *path, struct afs_fuse_bufvec **bufp, size_t size, off_t off, void *fi)
{
    if (path) {
        int res = read_cached(path, bufp, size, off);
        if (res != -EAGAIN)
            return res;
    }
    atomic_fetch_add_explicit(&n_fallbacks, 1, memory_order_relaxed);
    return py_read_buf ? py_read_buf(path, bufp, size, off, fi) : -EIO;
}
