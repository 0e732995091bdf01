// SPDX-License-Identifier: GPL-2.0-or-later
//! Native passthrough filesystem layer for the 9P engine.
