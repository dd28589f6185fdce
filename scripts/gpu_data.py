#!/usr/bin/env python3
"""Generated image sets for scripts/gpu_check.sh, as NumPy .npy files
written without numpy (the GPU machine has no data set installed):

  gpu_data.py DIR   ->  DIR/{mnist,cifar}_{train,test}_{x,y}.npy

mnist: 1x28x28 uint8 images, 3,000 train and 1,000 test; cifar: 3x32x32,
2,000 and 500 (CIFAR's shape, so training augments them). Each class
brightens its own band of rows, so that a net has something to learn."""
import random
import struct
import sys


def npy(path, descr, shape, data):
    head = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (
        descr, shape)
    head += " " * ((64 - (10 + len(head) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) +
                head.encode() + data)


def write_set(out, name, c, side, sizes, seed):
    r = random.Random(seed)
    plane = side * side
    for part, n in sizes:
        y = [r.randrange(10) for _ in range(n)]
        x = bytearray(r.randrange(80) for _ in range(n * c * plane))
        for i in range(n):
            for ch in range(c):
                base = (i * c + ch) * plane
                for row in range(2 * y[i], 2 * y[i] + 6):
                    for col in range(4, side - 4):
                        x[base + row * side + col] += 150
        shape = "(%d, %d, %d, %d)" % (n, c, side, side)
        npy("%s/%s_%s_x.npy" % (out, name, part), "|u1", shape, bytes(x))
        npy("%s/%s_%s_y.npy" % (out, name, part), "|u1", "(%d,)" % n,
            bytes(y))


def main():
    out = sys.argv[1]
    write_set(out, "mnist", 1, 28, (("train", 3000), ("test", 1000)), 1)
    write_set(out, "cifar", 3, 32, (("train", 2000), ("test", 500)), 2)


if __name__ == "__main__":
    main()
