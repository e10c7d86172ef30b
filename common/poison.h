/*
 * poison.h — makes the compiler refuse string functions that have no bound
 * (curl's checksrc list). Include it last, in its own include block.
 */
#ifndef MLGW_POISON_H
#define MLGW_POISON_H
#if defined(__GNUC__) && !defined(MLGW_NO_POISON)
#pragma GCC poison sprintf vsprintf strcpy strcat strncpy strncat strtok atoi atol atoll gets
#endif
#endif
