"""What each model family trains on: targets, losses, the train and validation steps, metrics.

``facezoo.train.loop.Trainer`` runs any ``Task`` under any ``tf.distribute`` strategy; a task never
touches checkpoints, schedules or workers.
"""
