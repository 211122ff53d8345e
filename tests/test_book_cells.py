"""Cells of the course's book (Deep Learning with Python), as the book writes them with only
the imports changed: the functional API with several inputs and outputs (lists and dicts), a
feature extracted from a trained graph, a subclassed model taking a dict, an image folder with
augmentation and ModelCheckpoint, a residual block with SeparableConv2D and
BatchNormalization, and a segmentation model with Conv2DTranspose (small data, fast)."""
import os
import tempfile

import numpy as np

import pycnn as keras
from pycnn import layers
from pycnn.utils import image_dataset_from_directory


def test_chapter7_functional_api_multi_io_and_subclassed_ticket_models(capsys):
    vocabulary_size = 1000; num_tags = 100; num_departments = 4; num_samples = 128
    title = keras.Input(shape=(vocabulary_size,), name="title")
    text_body = keras.Input(shape=(vocabulary_size,), name="text_body")
    tags = keras.Input(shape=(num_tags,), name="tags")
    features = layers.Concatenate()([title, text_body, tags])
    features = layers.Dense(64, activation="relu")(features)
    priority = layers.Dense(1, activation="sigmoid", name="priority")(features)
    department = layers.Dense(num_departments, activation="softmax", name="department")(features)
    model = keras.Model(inputs=[title, text_body, tags], outputs=[priority, department])
    title_data = np.random.randint(0, 2, size=(num_samples, vocabulary_size))
    text_body_data = np.random.randint(0, 2, size=(num_samples, vocabulary_size))
    tags_data = np.random.randint(0, 2, size=(num_samples, num_tags))
    priority_data = np.random.random(size=(num_samples, 1))
    department_data = np.random.randint(0, 2, size=(num_samples, num_departments))
    model.compile(optimizer="rmsprop", loss=["mean_squared_error", "categorical_crossentropy"], metrics=[["mean_absolute_error"], ["accuracy"]])
    model.fit([title_data, text_body_data, tags_data], [priority_data, department_data], epochs=1)
    model.evaluate([title_data, text_body_data, tags_data], [priority_data, department_data])
    priority_preds, department_preds = model.predict([title_data, text_body_data, tags_data])
    model.compile(optimizer="rmsprop", loss={"priority": "mean_squared_error", "department": "categorical_crossentropy"}, metrics={"priority": ["mean_absolute_error"], "department": ["accuracy"]})
    model.fit({"title": title_data, "text_body": text_body_data, "tags": tags_data}, {"priority": priority_data, "department": department_data}, epochs=1)
    print(model.layers[3].input, model.layers[3].output)
    features = model.layers[4].output
    difficulty = layers.Dense(3, activation="softmax", name="difficulty")(features)
    new_model = keras.Model(inputs=[title, text_body, tags], outputs=[priority, department, difficulty])
    new_model.summary()
    class CustomerTicketModel(keras.Model):
        def __init__(self, num_departments):
            super().__init__()
            self.concat_layer = layers.Concatenate()
            self.mixing_layer = layers.Dense(64, activation="relu")
            self.priority_scorer = layers.Dense(1, activation="sigmoid")
            self.department_classifier = layers.Dense(num_departments, activation="softmax")
        def call(self, inputs):
            title = inputs["title"]; text_body = inputs["text_body"]; tags = inputs["tags"]
            features = self.concat_layer([title, text_body, tags])
            features = self.mixing_layer(features)
            priority = self.priority_scorer(features)
            department = self.department_classifier(features)
            return priority, department
    model = CustomerTicketModel(num_departments=4)
    priority, department = model({"title": title_data, "text_body": text_body_data, "tags": tags_data})
    model.compile(optimizer="rmsprop", loss=["mean_squared_error", "categorical_crossentropy"], metrics=[["mean_absolute_error"], ["accuracy"]])
    model.fit({"title": title_data, "text_body": text_body_data, "tags": tags_data}, [priority_data, department_data], epochs=1)
    model.evaluate({"title": title_data, "text_body": text_body_data, "tags": tags_data}, [priority_data, department_data])
    priority_preds, department_preds = model.predict({"title": title_data, "text_body": text_body_data, "tags": tags_data})
    assert priority_preds.shape == (num_samples, 1) and department_preds.shape == (num_samples, 4)
    assert set(model.history.history) >= {"loss", "output_1_loss", "output_2_loss",
                                          "output_1_mean_absolute_error", "output_2_accuracy"}
    assert [t.shape for t in new_model.outputs] == [(None, 1), (None, 4), (None, 3)]



def test_chapter8_and_9_image_folders_augmentation_residuals_segmentation(capsys):
    d = tempfile.mkdtemp()
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        os.makedirs(f"{d}/train/{cls}"); os.makedirs(f"{d}/validation/{cls}")
        for i in range(12):
            img = rng.integers(0, 255, (40, 48, 3)).astype("uint8")
            if cls == "dog": img[:, :, 0] = 255
            keras.utils.save_img(f"{d}/{'train' if i < 8 else 'validation'}/{cls}/{i}.jpg", img)
    train_dataset = image_dataset_from_directory(f"{d}/train", image_size=(32, 32), batch_size=4)
    validation_dataset = image_dataset_from_directory(f"{d}/validation", image_size=(32, 32), batch_size=4)
    for data_batch, labels_batch in train_dataset:
        print("data batch shape:", data_batch.shape, "labels batch shape:", labels_batch.shape); break
    data_augmentation = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.1), layers.RandomZoom(0.2)])
    inputs = keras.Input(shape=(32, 32, 3))
    x = data_augmentation(inputs)
    x = layers.Rescaling(1./255)(x)
    x = layers.Conv2D(filters=8, kernel_size=3, activation="relu")(x)
    x = layers.MaxPooling2D(pool_size=2)(x)
    x = layers.Conv2D(filters=16, kernel_size=3, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    callbacks = [keras.callbacks.ModelCheckpoint(filepath=f"{d}/convnet_from_scratch_with_augmentation.keras", save_best_only=True, monitor="val_loss")]
    history = model.fit(train_dataset, epochs=3, validation_data=validation_dataset, callbacks=callbacks, verbose=2)
    test_model = keras.models.load_model(f"{d}/convnet_from_scratch_with_augmentation.keras")
    test_loss, test_acc = test_model.evaluate(validation_dataset)
    print(f"Test accuracy: {test_acc:.3f}")
    # residual block ch9
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    residual = x
    x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    x = layers.MaxPooling2D(2, padding="same")(x)
    residual = layers.Conv2D(64, 1, strides=2)(residual)
    x = layers.add([x, residual])
    x = layers.SeparableConv2D(32, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.summary()
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    model.fit(train_dataset, epochs=1, verbose=2)
    # segmentation ch9
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Rescaling(1./255)(inputs)
    x = layers.Conv2D(8, 3, strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    x = layers.Conv2DTranspose(8, 3, activation="relu", padding="same")(x)
    x = layers.Conv2DTranspose(8, 3, activation="relu", padding="same", strides=2)(x)
    outputs = layers.Conv2D(3, 3, activation="softmax", padding="same")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    xs = rng.random((8, 32, 32, 3)).astype("float32") * 255; ys = rng.integers(0, 3, (8, 32, 32, 1))
    model.fit(xs, ys, epochs=1, verbose=2)
    assert 0.0 <= test_acc <= 1.0
    assert os.path.exists(f"{d}/convnet_from_scratch_with_augmentation.keras")

