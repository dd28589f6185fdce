/* l2rw self test (l2rw check). Included by l2rw.h. */
#ifndef L2RW_CHECK_API_H
#define L2RW_CHECK_API_H
#endif
