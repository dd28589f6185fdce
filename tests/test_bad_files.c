/* Hostile model files and checkpoints: each case writes a CRC-valid file
 * that lies (a huge architecture in a tiny file, NaN parameters, a NaN
 * step, a step past the run, a checkpoint value the user never typed, a
 * model of another shape than the data) and checks the status or the
 * command's exit code and the message. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include "l2rw.h"
#include "l2rw_data.h"
#include "l2rw_train.h"
#include "model_io.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
    EXIT_BAD_INPUT = 2,       /* the CLI's status for bad input */
    CHILD_AS_LIMIT = 1 << 30, /* address space of the loading child */
    N_ROWS = 60,              /* examples of the CSV data */
    N_FEATURES = 4
};

static char csv_path[320], train_dir[320];

/* Writes buf[len] to path with a fresh CRC over all but its last 4
 * bytes, so that the file passes the checksum and reaches the parser. */
static int put_with_crc(const char *path, unsigned char *buf, size_t len)
{
    uint32_t crc = l2rw_crc32(0, buf, len - 4);
    for (int i = 0; i < 4; i++) buf[len - 4 + i] = (unsigned char)(crc >> 8 * i);
    FILE *fp = fopen(path, "wb");
    if (!fp) return 1;
    int bad = fwrite(buf, 1, len, fp) != len;
    return fclose(fp) != 0 || bad;
}

/* ------------------------------------------------------------ model files */

typedef struct {
    const char *model;
    int c, h, w, classes;
    uint64_t np, ns;       /* declared counts */
    const float *data;     /* np + ns values, or NULL for none */
} fake_model;

static l2rw_status write_fake(FILE *fp, void *ctx)
{
    const fake_model *m = ctx;
    static const char magic[L2RW_MAGIC_LEN] = {'L', '2', 'R', 'W',
                                               'N', 'E', 'T', '\n'};
    l2rw_bwriter w;
    L2RW_TRY(l2rw__bw_begin(&w, fp, "fake", magic));
    L2RW_TRY(l2rw__bw_u32(&w, 1));
    L2RW_TRY(l2rw__bw_str(&w, m->model));
    L2RW_TRY(l2rw__bw_i32(&w, m->c));
    L2RW_TRY(l2rw__bw_i32(&w, m->h));
    L2RW_TRY(l2rw__bw_i32(&w, m->w));
    L2RW_TRY(l2rw__bw_i32(&w, m->classes));
    L2RW_TRY(l2rw__bw_u64(&w, m->np));
    L2RW_TRY(l2rw__bw_u64(&w, m->ns));
    if (m->data)
        L2RW_TRY(l2rw__write_floats(&w, m->data, (size_t)(m->np + m->ns)));
    return l2rw__bw_end(&w);
}

/* Loads path in a child limited to CHILD_AS_LIMIT bytes of address space
 * (not under AddressSanitizer, which reserves terabytes): a load that
 * tried to build the named net would die or fail with NOMEM there. The
 * child sends back its status and message. */
static l2rw_status load_in_child(const char *path, char *msg, size_t size)
{
    int fd[2];
    msg[0] = 0;
    if (pipe(fd) != 0) return L2RW_ERR_IO;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        if (!getenv("L2RW_SANITIZED")) {
            struct rlimit rl = {CHILD_AS_LIMIT, CHILD_AS_LIMIT};
            setrlimit(RLIMIT_AS, &rl);
        }
        l2rw_net *net = NULL;
        int s = (int)l2rw_net_load_new(&net, path, 500);
        l2rw_net_free(net);
        if (write(fd[1], &s, sizeof s) != sizeof s) _exit(3);
        const char *e = l2rw_last_error();
        if (write(fd[1], e, strlen(e)) < 0) _exit(3);
        _exit(0);
    }
    close(fd[1]);
    int s = -1;
    if (read(fd[0], &s, sizeof s) != sizeof s) s = -1;
    ssize_t n = read(fd[0], msg, size - 1);
    msg[n > 0 ? n : 0] = 0;
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    return (l2rw_status)s;
}

/* The zoo's counts without a net equal the compiled net's. */
static void test_zoo_count_matches_net(void)
{
    static const struct {
        const char *model;
        int c, h, w;
    } nets[] = {{"mlp", 1, 28, 28},     {"mlp:7,5", 3, 2, 2},
                {"lenet", 1, 28, 28},   {"lenet", 3, 32, 32},
                {"resnet8", 3, 16, 16}, {"resnet14", 1, 8, 8},
                {"wrn-10-2", 3, 8, 8},  {"wrn-16-1:0.3", 3, 16, 16}};
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) {
        l2rw_net *net = NULL;
        uint64_t np = 0, ns = 0;
        CHECK_OK(l2rw_net_create(&net, nets[i].model, nets[i].c, nets[i].h,
                                 nets[i].w, 10, 1, 1));
        CHECK_OK(l2rw__zoo_count(nets[i].model, nets[i].c, nets[i].h,
                                 nets[i].w, 10, &np, &ns));
        CHECK(net && np == l2rw_net_num_params(net) &&
                  ns == l2rw_net_num_state(net),
              "%s: counted %llu/%llu, net has %zu/%zu", nets[i].model,
              (unsigned long long)np, (unsigned long long)ns,
              net ? l2rw_net_num_params(net) : 0,
              net ? l2rw_net_num_state(net) : 0);
        l2rw_net_free(net);
    }
    /* the bound: about 4x wrn-28-10 on CIFAR-10 */
    uint64_t np = 0, ns = 0;
    CHECK_OK(l2rw__zoo_count("wrn-28-10", 3, 32, 32, 10, &np, &ns));
    CHECK(np > 36000000 && np < 37000000 &&
              4 * np <= L2RW_MODEL_MAX_PARAMS &&
              5 * np > L2RW_MODEL_MAX_PARAMS,
          "wrn-28-10 has %llu parameters", (unsigned long long)np);
}

/* Case 1: a ~100-byte file naming resnet998 or wrn-994-64. */
static void test_huge_arch_small_file(void)
{
    char path[400], msg[1024];
    fake_model m = {"resnet998", 3, 32, 32, 10, 0, 0, NULL};
    path_in(path, sizeof path, "resnet998.l2rw");
    CHECK_OK(l2rw_write_atomic(path, write_fake, &m));
    l2rw_status s = load_in_child(path, msg, sizeof msg);
    CHECK(s == L2RW_ERR_ARCH && strstr(msg, path) &&
              strstr(msg, "holds 0 parameters and 0 state values, model "
                          "'resnet998' for input 3x32x32 and 10 classes "
                          "has "),
          "resnet998: %s: %s", l2rw_strerror(s), msg);

    m.model = "wrn-994-64";
    path_in(path, sizeof path, "wrn-994-64.l2rw");
    CHECK_OK(l2rw_write_atomic(path, write_fake, &m));
    s = load_in_child(path, msg, sizeof msg);
    CHECK(s == L2RW_ERR_FORMAT && strstr(msg, path) &&
              strstr(msg, "model 'wrn-994-64' has ") &&
              strstr(msg, "more than the 150000000 a model file may hold"),
          "wrn-994-64: %s: %s", l2rw_strerror(s), msg);

    /* declared counts beyond the bound are refused before anything */
    m.model = "mlp";
    m.np = L2RW_MODEL_MAX_PARAMS + 1;
    path_in(path, sizeof path, "declared.l2rw");
    CHECK_OK(l2rw_write_atomic(path, write_fake, &m));
    s = load_in_child(path, msg, sizeof msg);
    CHECK(s == L2RW_ERR_FORMAT && strstr(msg, path) &&
              strstr(msg, "declares 150000001 parameters"),
          "declared: %s: %s", l2rw_strerror(s), msg);

    if (!cli_available(0)) return;
    char args[1024];
    path_in(path, sizeof path, "resnet998.l2rw");
    snprintf(args, sizeof args, "eval --load %s --data csv:%s", path,
             csv_path);
    cli_result cli = run_cli(args);
    CHECK(cli.rc == EXIT_BAD_INPUT && strstr(cli.err, "model 'resnet998'"),
          "eval resnet998: exit %d: %s", cli.rc, cli.err);
}

/* A valid mlp:8 model for the CSV data, its values in vals (caller
 * frees) so that a case can poison one. */
static float *mlp_values(fake_model *m, int c)
{
    l2rw_net *net = NULL;
    if (l2rw_net_create(&net, "mlp:8", c, 1, 1, 2, 1, 1) != L2RW_OK)
        return NULL;
    size_t np = l2rw_net_num_params(net);
    float *v = malloc(np * sizeof *v);
    if (v) memcpy(v, l2rw_net_params(net), np * sizeof *v);
    *m = (fake_model){"mlp:8", c, 1, 1, 2, np, 0, v};
    l2rw_net_free(net);
    return v;
}

/* Case 2: NaN or Inf parameters or state. */
static void test_nonfinite_values(void)
{
    char path[400], args[1024];
    fake_model m;
    float *v = mlp_values(&m, N_FEATURES);
    CHECK(v != NULL, "no mlp");
    if (!v) return;
    v[3] = NAN;
    path_in(path, sizeof path, "nan.l2rw");
    CHECK_OK(l2rw_write_atomic(path, write_fake, &m));
    l2rw_net *net = NULL;
    l2rw_status s = l2rw_net_load_new(&net, path, 4);
    CHECK(s == L2RW_ERR_FORMAT && !net && strstr(l2rw_last_error(), path) &&
              strstr(l2rw_last_error(), "parameter [3] is NaN"),
          "NaN: %s: %s", l2rw_strerror(s), l2rw_last_error());
    l2rw_net_free(net);
    if (cli_available(0)) {
        snprintf(args, sizeof args, "eval --load %s --data csv:%s", path,
                 csv_path);
        cli_result cli = run_cli(args);
        CHECK(cli.rc == EXIT_BAD_INPUT && strstr(cli.err, path) &&
                  strstr(cli.err, "parameter [3] is NaN"),
              "eval NaN: exit %d: %s", cli.rc, cli.err);
    }
    free(v);

    /* Inf in the batch-norm state, into an existing net */
    CHECK_OK(l2rw_net_create(&net, "resnet8", 1, 4, 4, 2, 1, 1));
    if (!net) return;
    size_t np = l2rw_net_num_params(net), ns = l2rw_net_num_state(net);
    v = malloc((np + ns) * sizeof *v);
    if (!v) {
        l2rw_net_free(net);
        return;
    }
    memcpy(v, l2rw_net_params(net), np * sizeof *v);
    memcpy(v + np, l2rw_net_state(net), ns * sizeof *v);
    v[np + 5] = -INFINITY;
    m = (fake_model){"resnet8", 1, 4, 4, 2, np, ns, v};
    path_in(path, sizeof path, "inf.l2rw");
    CHECK_OK(l2rw_write_atomic(path, write_fake, &m));
    s = l2rw_net_load(net, path);
    CHECK(s == L2RW_ERR_FORMAT && strstr(l2rw_last_error(), path) &&
              strstr(l2rw_last_error(), "batch-norm statistic [5] is "
                                        "infinite"),
          "Inf: %s: %s", l2rw_strerror(s), l2rw_last_error());
    free(v);
    l2rw_net_free(net);
}

/* Case 6: a model for other inputs, with a norm.txt of its own channel
 * count next to it: the model mismatch is reported, not the norm. */
static void test_eval_model_before_norm(void)
{
    if (!cli_available(0)) return;
    char dir[400], path[500], norm[500], args[1200];
    path_in(dir, sizeof dir, "other-arch");
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/model.l2rw", dir);
    snprintf(norm, sizeof norm, "%s/norm.txt", dir);
    fake_model m;
    float *v = mlp_values(&m, N_FEATURES - 1);
    CHECK(v != NULL, "no mlp");
    if (!v) return;
    CHECK_OK(l2rw_write_atomic(path, write_fake, &m));
    float mean[N_FEATURES - 1] = {0}, sd[N_FEATURES - 1] = {1, 1, 1};
    l2rw_norm nm = {N_FEATURES - 1, mean, sd};
    CHECK_OK(l2rw_norm_save(&nm, norm));
    snprintf(args, sizeof args, "eval --load %s --data csv:%s", path,
             csv_path);
    cli_result cli = run_cli(args);
    CHECK(cli.rc == EXIT_BAD_INPUT && strstr(cli.err, path) &&
              strstr(cli.err, "model 'mlp:8' takes inputs 3x1x1, the data has "
                          "4x1x1") &&
              !strstr(cli.err, "norm"),
          "eval of another shape: exit %d: %s", cli.rc, cli.err);
    free(v);
}

/* ------------------------------------------------------------ checkpoints */

static l2rw_train_cfg train_cfg(const char *out)
{
    static char data[400];
    snprintf(data, sizeof data, "csv:%s", csv_path);
    l2rw_train_cfg c = l2rw_train_cfg_default();
    c.data = data;
    c.model = "mlp:8";
    c.method = "plain";
    c.val_per_class = 0;
    c.batch = 10;
    c.steps = 4;
    c.eval_every = 2;
    c.checkpoint_every = 2;
    c.threads = 1;
    c.out_dir = out;
    return c;
}

/* A checkpoint's layout up to the counts (train_io.c, version 3). */
typedef struct {
    unsigned char *buf;
    size_t len;
    size_t fp_at, fp_len;   /* fingerprint bytes */
    size_t tg_at, tg_len;   /* targets bytes */
    size_t step_at;         /* i64 step; then i64 fine-tune step */
    size_t row0_at;         /* f64 step of metrics row 0 */
} ckpt_bytes;

static uint32_t get32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

static void put64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> 8 * i);
}

static int ckpt_parse(ckpt_bytes *k, const char *path)
{
    enum { WINDOW_BYTES = 8 * 8 + 5 * 8, COUNT_BYTES = 8 + 8 + 4 + 8 };
    long len = 0;
    k->buf = (unsigned char *)slurp(path, &len);
    k->len = (size_t)len;
    if (!k->buf || k->len < 32) return 1;
    k->fp_at = L2RW_MAGIC_LEN + 4 + 4;
    k->fp_len = get32(k->buf + k->fp_at - 4);
    k->tg_at = k->fp_at + k->fp_len + 4;
    k->tg_len = get32(k->buf + k->tg_at - 4);
    k->step_at = k->tg_at + k->tg_len;
    k->row0_at = k->step_at + COUNT_BYTES + 2 * WINDOW_BYTES + 4;
    return k->row0_at + 8 > k->len;
}

/* The checkpoint of train_dir with bytes [at, at+old) replaced by
 * new_text, written (fresh CRC) as dir/checkpoint.l2rw. */
static int ckpt_splice(const ckpt_bytes *k, size_t at, size_t old,
                       const char *new_text, const char *dir)
{
    size_t nl = strlen(new_text), len = k->len - old + nl;
    unsigned char *b = malloc(len);
    if (!b) return 1;
    memcpy(b, k->buf, at);
    memcpy(b + at, new_text, nl);
    memcpy(b + at + nl, k->buf + at + old, k->len - at - old);
    /* the u32 length before a spliced string */
    if (old != nl)
        for (int i = 0; i < 4; i++)
            b[at - 4 + i] = (unsigned char)(nl >> 8 * i);
    char path[500];
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%s", dir, L2RW_FILE_CHECKPOINT);
    int bad = put_with_crc(path, b, len);
    free(b);
    return bad;
}

/* A copy of train_dir's checkpoint with one i64 or f64 field patched. */
static int ckpt_patch64(const ckpt_bytes *k, size_t at, uint64_t v,
                        const char *dir)
{
    unsigned char *save = malloc(k->len);
    if (!save) return 1;
    memcpy(save, k->buf, k->len);
    put64(k->buf + at, v);
    int bad = ckpt_splice(k, 0, 0, "", dir);
    memcpy(k->buf, save, k->len);
    free(save);
    return bad;
}

static uint64_t f64_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* Resumes dir through the library with the run's configuration. */
static l2rw_status resume_lib(const char *dir)
{
    char out[400];
    l2rw_train_cfg c = train_cfg(NULL);
    c.resume_dir = dir;
    path_in(out, sizeof out, "resume-out");
    c.out_dir = out;
    l2rw_train_result res;
    return l2rw_train_run(&c, &res);
}

static int have_checkpoint(ckpt_bytes *k)
{
    char path[500];
    snprintf(path, sizeof path, "%s/%s", train_dir, L2RW_FILE_CHECKPOINT);
    if (ckpt_parse(k, path) == 0) return 1;
    free(k->buf);
    k->buf = NULL;
    return 0;
}

/* Case 3: a metrics step of NaN or 1e300 (was a float-to-long
 * conversion of undefined behaviour). */
static void test_ckpt_row_step(void)
{
    ckpt_bytes k;
    CHECK(have_checkpoint(&k), "no checkpoint in %s", train_dir);
    if (!k.buf) return;
    static const struct {
        double step;
        const char *text;
    } bad[] = {{NAN, "nan"}, {1e300, "1e+300"}, {-1, "-1"}, {2.5, "2.5"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char dir[400], want[200];
        snprintf(want, sizeof want, "metrics row 0: field step is %s, not",
                 bad[i].text);
        path_in(dir, sizeof dir, "row-step");
        CHECK(ckpt_patch64(&k, k.row0_at, f64_bits(bad[i].step), dir) == 0,
              "patch");
        l2rw_status s = resume_lib(dir);
        CHECK(s == L2RW_ERR_FORMAT && strstr(l2rw_last_error(), dir) &&
                  strstr(l2rw_last_error(), want),
              "row step %g: %s: %s", bad[i].step, l2rw_strerror(s),
              l2rw_last_error());
    }
    free(k.buf);
}

/* Case 4: a step past its run's length; no run length at all. */
static void test_ckpt_step_past_length(void)
{
    ckpt_bytes k;
    char dir[400], conf[8192], args[600];
    CHECK(have_checkpoint(&k), "no checkpoint in %s", train_dir);
    if (!k.buf) return;
    path_in(dir, sizeof dir, "past-length");
    CHECK(ckpt_patch64(&k, k.step_at, 99, dir) == 0, "patch");
    l2rw_status s = l2rw_train_resume_config(dir, conf, sizeof conf);
    CHECK(s == L2RW_ERR_FORMAT && strstr(l2rw_last_error(), dir) &&
              strstr(l2rw_last_error(), "field step 99 is past the run's "
                                        "length (field steps = 4)"),
          "past length: %s: %s", l2rw_strerror(s), l2rw_last_error());
    s = resume_lib(dir);
    CHECK(s == L2RW_ERR_FORMAT &&
              strstr(l2rw_last_error(), "field step 99 is past"),
          "past length (run): %s: %s", l2rw_strerror(s), l2rw_last_error());

    path_in(dir, sizeof dir, "no-length");
    CHECK(ckpt_splice(&k, k.tg_at, k.tg_len, "finetune-clean=0\n", dir) == 0,
          "splice");
    s = l2rw_train_resume_config(dir, conf, sizeof conf);
    CHECK(s == L2RW_ERR_FORMAT && strstr(l2rw_last_error(), dir) &&
              strstr(l2rw_last_error(), "no run length (field steps "
                                        "missing"),
          "no length: %s: %s", l2rw_strerror(s), l2rw_last_error());
    s = resume_lib(dir);
    CHECK(s == L2RW_ERR_FORMAT &&
              strstr(l2rw_last_error(), "no run length"),
          "no length (run): %s: %s", l2rw_strerror(s), l2rw_last_error());
    if (cli_available(0)) {
        snprintf(args, sizeof args, "train --resume %s --quiet --no-plots",
                 dir);
        cli_result cli = run_cli(args);
        CHECK(cli.rc == EXIT_BAD_INPUT && strstr(cli.err, dir) &&
                  strstr(cli.err, "field steps"),
              "train --resume without length: exit %d: %s", cli.rc, cli.err);
    }
    free(k.buf);
}

/* Case 5: values the checkpoint supplies are blamed on the checkpoint,
 * not on options the user did not type. */
static void test_ckpt_values_blame_checkpoint(void)
{
    ckpt_bytes k;
    char dir[400], conf[8192], args[600];
    CHECK(have_checkpoint(&k), "no checkpoint in %s", train_dir);
    if (!k.buf) return;
    /* a fine-tuning state its targets do not describe: used to say
     * "resume it with --steps 2, not 4" */
    path_in(dir, sizeof dir, "ft-state");
    put64(k.buf + k.step_at, 2);
    put64(k.buf + k.step_at + 8, 1);
    CHECK(ckpt_splice(&k, 0, 0, "", dir) == 0, "patch");
    l2rw_status s = l2rw_train_resume_config(dir, conf, sizeof conf);
    CHECK(s == L2RW_ERR_FORMAT && strstr(l2rw_last_error(), dir) &&
              strstr(l2rw_last_error(), "field fine-tune step is 1 but "
                                        "field step 2 is not the run's "
                                        "length (field steps = 4)"),
          "ft state: %s: %s", l2rw_strerror(s), l2rw_last_error());
    s = resume_lib(dir);
    CHECK(s == L2RW_ERR_FORMAT && !strstr(l2rw_last_error(), "--steps"),
          "ft state (run): %s: %s", l2rw_strerror(s), l2rw_last_error());
    put64(k.buf + k.step_at, 4);
    CHECK(ckpt_splice(&k, 0, 0, "", dir) == 0, "patch");
    s = l2rw_train_resume_config(dir, conf, sizeof conf);
    CHECK(s == L2RW_ERR_FORMAT &&
              strstr(l2rw_last_error(), "field fine-tune step 1 is past "
                                        "field finetune-clean (0)"),
          "ft steps: %s: %s", l2rw_strerror(s), l2rw_last_error());
    put64(k.buf + k.step_at + 8, 0);

    /* an lr the CLI would take as the default of --lr */
    char *fp = malloc(k.fp_len + 1), *lr;
    CHECK(fp != NULL, "no memory");
    if (!fp) {
        free(k.buf);
        return;
    }
    memcpy(fp, k.buf + k.fp_at, k.fp_len);
    fp[k.fp_len] = 0;
    lr = strstr(fp, "\nlr=");
    CHECK(lr != NULL, "no lr in %s", fp);
    if (lr) {
        char *end = strchr(lr + 1, '\n');
        char fixed[8192];
        snprintf(fixed, sizeof fixed, "%.*s\nlr=nan%s", (int)(lr - fp), fp,
                 end ? end : "");
        path_in(dir, sizeof dir, "lr-nan");
        CHECK(ckpt_splice(&k, k.fp_at, k.fp_len, fixed, dir) == 0, "splice");
        s = l2rw_train_resume_config(dir, conf, sizeof conf);
        CHECK(s == L2RW_ERR_FORMAT && strstr(l2rw_last_error(), dir) &&
                  strstr(l2rw_last_error(), "field lr has the invalid value "
                                            "'nan'"),
              "lr=nan: %s: %s", l2rw_strerror(s), l2rw_last_error());
        if (cli_available(0)) {
            snprintf(args, sizeof args, "train --resume %s --quiet "
                     "--no-plots", dir);
            cli_result cli = run_cli(args);
            CHECK(cli.rc == EXIT_BAD_INPUT && strstr(cli.err, dir) &&
                      strstr(cli.err, "field lr") && !strstr(cli.err, "--lr"),
                  "train --resume lr=nan: exit %d: %s", cli.rc, cli.err);
        }
    }
    free(fp);
    free(k.buf);
}

/* ------------------------------------------------------------------ setup */

static int make_data(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/l2rw-test-bad-files-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    path_in(csv_path, sizeof csv_path, "data.csv");
    FILE *fp = fopen(csv_path, "w");
    if (!fp) return 1;
    fprintf(fp, "a,b,c,d,label\n");
    for (int i = 0; i < N_ROWS; i++)
        fprintf(fp, "%d,%d,%g,%g,%d\n", i % 7, i % 3, 0.5 * i, 1.0 / (i + 1),
                i % 2);
    return fclose(fp) != 0;
}

/* A short run whose checkpoint the checkpoint cases patch. */
static void test_make_checkpoint(void)
{
    path_in(train_dir, sizeof train_dir, "run");
    l2rw_train_cfg c = train_cfg(train_dir);
    l2rw_train_result res;
    CHECK_OK(l2rw_train_run(&c, &res));
    char conf[8192];
    CHECK_OK(l2rw_train_resume_config(train_dir, conf, sizeof conf));
    CHECK(strstr(conf, "\nsteps=4\n") != NULL, "targets: %s", conf);
}

int main(void)
{
    CHECK(make_data() == 0, "cannot write the data into %s", tmpdir);
    RUN(test_zoo_count_matches_net);
    RUN(test_huge_arch_small_file);
    RUN(test_nonfinite_values);
    RUN(test_eval_model_before_norm);
    RUN(test_make_checkpoint);
    RUN(test_ckpt_row_step);
    RUN(test_ckpt_step_past_length);
    RUN(test_ckpt_values_blame_checkpoint);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("could not remove %s\n", tmpdir);
    return CHECK_DONE("test_bad_files");
}
