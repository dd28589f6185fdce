/* Shared by the model-file and checkpoint targets: both formats end with
 * a CRC-32 of everything before it. */
#ifndef L2RW_FUZZ_CRC_FILE_H
#define L2RW_FUZZ_CRC_FILE_H

#include <stdint.h>
#include <stdio.h>

#include "common.h"

/* Writes the input to path p with its last 4 bytes replaced by the CRC of
 * the rest: a mutated file would otherwise stop at the checksum, and the
 * parser behind it would go unfuzzed (the checksum check is covered by
 * the unit tests). Returns non-zero when the file could not be written. */
static int write_input(const char *p, const uint8_t *data, size_t size)
{
    FILE *fp = fopen(p, "wb");
    if (!fp) return 1;
    size_t ok = fwrite(data, 1, size, fp);
    if (size >= 4) {
        uint32_t crc = l2rw_crc32(0, data, size - 4);
        unsigned char b[4];
        for (int i = 0; i < 4; i++) b[i] = (unsigned char)(crc >> 8 * i);
        ok = ok == size && fseek(fp, (long)(size - 4), SEEK_SET) == 0 &&
                     fwrite(b, 1, 4, fp) == 4
                 ? size
                 : 0;
    }
    return (fclose(fp) != 0) | (ok != size);
}

#endif
