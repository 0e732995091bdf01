// SPDX-License-Identifier: GPL-2.0-or-later
//! 9P2000.L and 9P2000.u wire codec.
