/* libFuzzer target: the CSV parser. Input: 1 byte options (header mode,
 * label column -1..2 or by name "label"), then the text. The text is
 * copied without a terminating NUL so reads past the end are caught. */
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    l2rw_csv_opts o = l2rw_csv_opts_default();
    o.header = (data[0] & 3) == 3 ? -1 : (data[0] & 3) == 2 ? 0 : data[0] & 1;
    o.label_index = ((data[0] >> 2) & 3) - 1;
    if (data[0] & 0x10) o.label_name = "label";
    if (data[0] & 0x20) o.classes = 3;
    char *text = malloc(size - 1 + 1); /* +1: malloc(0) may be NULL */
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    l2rw_dataset d;
    if (l2rw__csv_parse(&d, text, size - 1, "csv", &o) == L2RW_OK)
        l2rw_dataset_free(&d);
    free(text);
    return 0;
}
